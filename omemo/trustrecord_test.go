package omemo

import (
	"bytes"
	"context"
	"testing"
)

// TestTrustKeyChangeAndListed: blind trust is not given to a second
// identity key of a known device id (and the change is reported once),
// nor, under ListedOnly, to a device missing from its JID's device list.
func TestTrustKeyChangeAndListed(t *testing.T) {
	ctx := context.Background()
	alice := newPeer(t, "alice@example.org", Options{PreKeys: 5})
	key := func(b byte) []byte { return append([]byte{5}, bytes.Repeat([]byte{b}, 32)...) }
	bob1 := Address{JID: "bob@example.org", Device: 1}
	bob2 := Address{JID: "bob@example.org", Device: 2}
	type want struct {
		level   TrustLevel
		trusted bool
		changed bool
	}
	check := func(ctx context.Context, name string, addr Address, ik []byte, w want) {
		t.Helper()
		level, trusted, _, changed, err := alice.m.trustRecord(ctx, V03, addr, ik, true)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := (want{level, trusted, changed}); got != w {
			t.Errorf("%s: got %+v, want %+v", name, got, w)
		}
	}
	check(ctx, "first key of device 1", bob1, key(1), want{TrustTrusted, true, false})
	check(ctx, "same key again", bob1, key(1), want{TrustTrusted, true, false})
	check(ctx, "new key on device 1", bob1, key(2), want{TrustUndecided, false, true})
	check(ctx, "new key again: reported once, still not trusted", bob1, key(2), want{TrustUndecided, false, false})
	check(ctx, "the old key keeps its decision", bob1, key(1), want{TrustTrusted, true, false})
	if err := alice.m.SetTrust(ctx, V03, bob1, key(2), TrustTrusted); err != nil {
		t.Fatal(err)
	}
	check(ctx, "new key after the user trusted it", bob1, key(2), want{TrustTrusted, true, false})

	listed := ListedOnly(ctx)
	check(listed, "unlisted device asserted by a room", bob2, key(3), want{TrustUndecided, false, false})
	if err := alice.s.PutDeviceList(ctx, V2, bob2.JID, []Device{{ID: 1}, {ID: 2}}); err != nil {
		t.Fatal(err)
	}
	check(listed, "the same device once listed", bob2, key(3), want{TrustUndecided, true, false})
	check(ctx, "without ListedOnly", Address{JID: "carol@example.org", Device: 9}, key(4), want{TrustTrusted, true, false})
}

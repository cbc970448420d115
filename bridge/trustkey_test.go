package bridge

import (
	"bytes"
	"context"
	"testing"

	"github.com/mxomemo/xmpp-bridge/omemo"
)

// TestTrustPicksKeyInUse: a device id on record with two identity keys
// (another key was seen for it once) is trusted by command under the key
// of the session in use, whatever the byte order of the records.
func TestTrustPicksKeyInUse(t *testing.T) {
	f := newInboxFixture(t)
	ctx := context.Background()
	in, err := f.receive(t, f.stanza(t, "k1", f.encrypt(t, f.bobXC, "hello")))
	wantBody(t, in, err, "hello")
	m := f.c.omemoClient().Manager()
	dev := f.bobXC.Manager().DeviceID()
	addr := omemo.Address{JID: f.bob.String(), Device: dev}
	inUse, err := m.SessionIdentityKey(ctx, omemo.V2, addr)
	if err != nil || inUse == nil {
		t.Fatalf("session key: %v %v", inUse, err)
	}
	// A stale key for the same device id, sorting after (and before) the
	// real one.
	for _, b := range []byte{0x00, 0xff} {
		stale := append([]byte{5}, bytes.Repeat([]byte{b}, 32)...)
		if err := m.SetTrust(ctx, omemo.V03, addr, stale, omemo.TrustUndecided); err != nil {
			t.Fatal(err)
		}
	}
	d, err := f.c.setDeviceTrust(ctx, f.bob, dev, "", omemo.TrustVerified)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.IdentityKey, inUse) {
		t.Fatalf("trusted key %x, want the session's %x", d.IdentityKey, inUse)
	}
	level, _, err := m.Trust(ctx, omemo.V03, addr, inUse)
	if err != nil || level != omemo.TrustVerified {
		t.Errorf("key in use is %v (%v), want verified", level, err)
	}
}

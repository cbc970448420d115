package omemostore_test

import (
	"context"
	"testing"
	"time"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemostore"
)

// TestBaseKeys: base keys are kept per account and address, survive the
// session's deletion, are pruned by age and deleted with the account.
func TestBaseKeys(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	a, b := omemostore.New(db, "a@example.org"), omemostore.New(db, "b@example.org")
	addr := omemo.Address{JID: "bob@example.org", Device: 7}
	key := []byte("0123456789abcdef0123456789abcdef")
	old := time.Now().Add(-48 * time.Hour)
	if err := a.PutBaseKey(ctx, omemo.V03, addr, key, old); err != nil {
		t.Fatal(err)
	}
	if err := a.PutBaseKey(ctx, omemo.V03, addr, key, old); err != nil {
		t.Fatalf("second put: %v", err)
	}
	for _, tc := range []struct {
		name string
		s    *omemostore.Store
		v    omemo.Version
		addr omemo.Address
		want bool
	}{
		{"stored", a, omemo.V03, addr, true},
		{"other account", b, omemo.V03, addr, false},
		{"other version", a, omemo.V2, addr, false},
		{"other device", a, omemo.V03, omemo.Address{JID: addr.JID, Device: 8}, false},
	} {
		if got, err := tc.s.SeenBaseKey(ctx, tc.v, tc.addr, key); err != nil || got != tc.want {
			t.Errorf("%s: %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	if err := a.RemoveSession(ctx, omemo.V03, addr); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.SeenBaseKey(ctx, omemo.V03, addr, key); !got {
		t.Error("base key gone with the session")
	}
	if err := a.PruneBaseKeys(ctx, old.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.SeenBaseKey(ctx, omemo.V03, addr, key); !got {
		t.Error("base key pruned before its time")
	}
	if err := a.PruneBaseKeys(ctx, old.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.SeenBaseKey(ctx, omemo.V03, addr, key); got {
		t.Error("base key kept past the prune")
	}
	if err := a.PutBaseKey(ctx, omemo.V03, addr, key, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.SeenBaseKey(ctx, omemo.V03, addr, key); got {
		t.Error("base key kept after the account was deleted")
	}
}

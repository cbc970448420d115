package omemostore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemostore"
)

// TestCacheFollowsWrites: device lists and trust records are served from the cache, and every
// way they change is seen at once: a write outside a transaction, a write in a transaction that
// commits (a read outside it meanwhile must not cache the old rows), one that rolls back, a read
// inside a transaction of its own uncommitted write, and Delete.
func TestCacheFollowsWrites(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	s := omemostore.New(db, "acct")
	const peer = "bob@localhost"
	trust := func(t *testing.T, ctx context.Context) []omemo.TrustLevel {
		t.Helper()
		recs, err := s.TrustRecords(ctx, peer)
		if err != nil {
			t.Fatal(err)
		}
		var out []omemo.TrustLevel
		for _, r := range recs {
			out = append(out, r.Level)
		}
		return out
	}
	devices := func(t *testing.T, ctx context.Context) int {
		t.Helper()
		l, err := s.DeviceList(ctx, omemo.V2, peer)
		if err != nil {
			t.Fatal(err)
		}
		return len(l)
	}
	rec := omemo.TrustRecord{JID: peer, Device: 7, IdentityKey: []byte("key-7"), Level: omemo.TrustUndecided}
	errRollback := errors.New("roll back")
	steps := []struct {
		name        string
		do          func(t *testing.T)
		wantTrust   []omemo.TrustLevel
		wantDevices int
	}{
		{"empty", func(*testing.T) {}, nil, 0},
		{"write outside a transaction", func(t *testing.T) {
			if err := s.PutTrust(ctx, rec); err != nil {
				t.Fatal(err)
			}
			if err := s.PutDeviceList(ctx, omemo.V2, peer, []omemo.Device{{ID: 7}}); err != nil {
				t.Fatal(err)
			}
		}, []omemo.TrustLevel{omemo.TrustUndecided}, 1},
		{"write in a transaction that commits, read outside meanwhile", func(t *testing.T) {
			err := db.DoTxn(ctx, nil, func(txCtx context.Context) error {
				r := rec
				r.Level = omemo.TrustVerified
				if err := s.PutTrust(txCtx, r); err != nil {
					return err
				}
				if err := s.PutDeviceList(txCtx, omemo.V2, peer, []omemo.Device{{ID: 7}, {ID: 8}}); err != nil {
					return err
				}
				if got := trust(t, txCtx); len(got) != 1 || got[0] != omemo.TrustVerified {
					t.Errorf("inside the transaction: %v, want its own write", got)
				}
				// Outside, the committed rows are still the old ones: read (and not cached).
				if got := trust(t, ctx); len(got) != 1 || got[0] != omemo.TrustUndecided {
					t.Errorf("outside the open transaction: %v, want the committed level", got)
				}
				if n := devices(t, ctx); n != 1 {
					t.Errorf("outside the open transaction: %d devices, want the committed 1", n)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}, []omemo.TrustLevel{omemo.TrustVerified}, 2},
		{"write in a transaction that rolls back", func(t *testing.T) {
			err := db.DoTxn(ctx, nil, func(txCtx context.Context) error {
				r := rec
				r.Level = omemo.TrustDistrusted
				if err := s.PutTrust(txCtx, r); err != nil {
					return err
				}
				_ = trust(t, txCtx)
				return errRollback
			})
			if !errors.Is(err, errRollback) {
				t.Fatal(err)
			}
		}, []omemo.TrustLevel{omemo.TrustVerified}, 2},
		{"delete", func(t *testing.T) {
			if err := s.Delete(ctx); err != nil {
				t.Fatal(err)
			}
		}, nil, 0},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.do(t)
			for range 2 { // the second read is served from the cache
				got := trust(t, ctx)
				if len(got) != len(st.wantTrust) || (len(got) > 0 && got[0] != st.wantTrust[0]) {
					t.Errorf("trust %v, want %v", got, st.wantTrust)
				}
				if n := devices(t, ctx); n != st.wantDevices {
					t.Errorf("%d devices, want %d", n, st.wantDevices)
				}
			}
		})
	}
}

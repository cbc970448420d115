package omemostore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemostore"
)

// TestStoreTxnCache: inside Store.DoTxn trust records are served from the cache unless the
// transaction wrote them; what it read without a hit is cached once it is over, and what it
// wrote is cached again at once (not after a minute of quiet), committed or rolled back. A row
// changed behind the store's back tells a cached read from a database read.
func TestStoreTxnCache(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	s := omemostore.New(db, "acct")
	const bob, carol = "bob@localhost", "carol@localhost"
	level := func(t *testing.T, ctx context.Context, jid string) omemo.TrustLevel {
		t.Helper()
		recs, err := s.TrustRecords(ctx, jid)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1 {
			t.Fatalf("%d trust records of %s, want 1", len(recs), jid)
		}
		return recs[0].Level
	}
	behind := func(t *testing.T, jid string, l omemo.TrustLevel) {
		t.Helper()
		if _, err := db.Exec(ctx, `UPDATE omemo_trust SET trust=$1 WHERE account='acct' AND jid=$2`, int(l), jid); err != nil {
			t.Fatal(err)
		}
	}
	put := func(ctx context.Context, jid string, l omemo.TrustLevel) error {
		return s.PutTrust(ctx, omemo.TrustRecord{JID: jid, Device: 7, IdentityKey: []byte("key-7"), Level: l})
	}
	errRollback := errors.New("roll back")
	tests := []struct {
		name string
		do   func(t *testing.T)
		jid  string
		// want is what a read outside says once the row changed behind the store's back to
		// TrustVerified: the cached level, or TrustVerified when nothing is cached.
		want omemo.TrustLevel
	}{
		{"read inside hits the cache", func(t *testing.T) {
			if err := put(ctx, bob, omemo.TrustUndecided); err != nil {
				t.Fatal(err)
			}
			_ = level(t, ctx, bob) // cached
			behind(t, bob, omemo.TrustDistrusted)
			err := s.DoTxn(ctx, func(ctx context.Context) error {
				if got := level(t, ctx, bob); got != omemo.TrustUndecided {
					t.Errorf("inside: %v, want the cached %v", got, omemo.TrustUndecided)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}, bob, omemo.TrustUndecided},
		{"own write inside is read, and cached once committed", func(t *testing.T) {
			err := s.DoTxn(ctx, func(ctx context.Context) error {
				if err := put(ctx, bob, omemo.TrustTrusted); err != nil {
					return err
				}
				if got := level(t, ctx, bob); got != omemo.TrustTrusted {
					t.Errorf("inside after its own write: %v, want %v", got, omemo.TrustTrusted)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := level(t, ctx, bob); got != omemo.TrustTrusted {
				t.Errorf("after the commit: %v, want %v", got, omemo.TrustTrusted)
			}
		}, bob, omemo.TrustTrusted},
		{"write rolled back: the committed rows, cached", func(t *testing.T) {
			if err := put(ctx, bob, omemo.TrustTrusted); err != nil {
				t.Fatal(err)
			}
			err := s.DoTxn(ctx, func(ctx context.Context) error {
				if err := put(ctx, bob, omemo.TrustDistrusted); err != nil {
					return err
				}
				return errRollback
			})
			if !errors.Is(err, errRollback) {
				t.Fatal(err)
			}
			if got := level(t, ctx, bob); got != omemo.TrustTrusted {
				t.Errorf("after the rollback: %v, want the committed %v", got, omemo.TrustTrusted)
			}
		}, bob, omemo.TrustTrusted},
		{"miss inside is cached once over", func(t *testing.T) {
			if _, err := db.Exec(ctx, `INSERT INTO omemo_trust (account, jid, device_id, identity_key, trust) VALUES ('acct', $1, 7, $2, $3)`,
				carol, []byte("key-7"), int(omemo.TrustUndecided)); err != nil {
				t.Fatal(err)
			}
			err := s.DoTxn(ctx, func(ctx context.Context) error {
				if got := level(t, ctx, carol); got != omemo.TrustUndecided {
					t.Errorf("inside: %v, want %v", got, omemo.TrustUndecided)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}, carol, omemo.TrustUndecided},
		{"write in a transaction of another kind stays quiet", func(t *testing.T) {
			err := db.DoTxn(ctx, nil, func(ctx context.Context) error {
				return put(ctx, carol, omemo.TrustTrusted)
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := level(t, ctx, carol); got != omemo.TrustTrusted {
				t.Errorf("after the commit: %v, want %v", got, omemo.TrustTrusted)
			}
		}, carol, omemo.TrustVerified},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.do(t)
			behind(t, tc.jid, omemo.TrustVerified)
			if got := level(t, ctx, tc.jid); got != tc.want {
				t.Errorf("read outside after a change behind the store: %v, want %v", got, tc.want)
			}
		})
	}
}

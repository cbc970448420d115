package omemostore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemostore"
)

// TestSessionMatchesKnown: a session record written and committed through Store.DoTxn is
// answered from memory (a row changed behind the store's back is not seen); one written
// outside it, rolled back, or removed is read from the database again.
func TestSessionMatchesKnown(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	s := omemostore.New(db, "acct")
	addr := omemo.Address{JID: "bob@localhost", Device: 7}
	behind := func(t *testing.T, rec string) {
		t.Helper()
		if _, err := db.Exec(ctx, `UPDATE omemo_session SET record=$1 WHERE account='acct' AND jid=$2`, []byte(rec), addr.JID); err != nil {
			t.Fatal(err)
		}
	}
	inTxn := func(t *testing.T, rec string, fail error) {
		t.Helper()
		err := s.DoTxn(ctx, func(ctx context.Context) error {
			if err := s.PutSession(ctx, omemo.V2, addr, []byte(rec)); err != nil {
				return err
			}
			return fail
		})
		if !errors.Is(err, fail) {
			t.Fatal(err)
		}
	}
	errRollback := errors.New("roll back")
	tests := []struct {
		name string
		do   func(t *testing.T)
		// After the row changed behind the store to "behind": which record matches.
		match string
	}{
		{"written outside a transaction: the database", func(t *testing.T) {
			if err := s.PutSession(ctx, omemo.V2, addr, []byte("one")); err != nil {
				t.Fatal(err)
			}
		}, "behind"},
		{"committed through DoTxn: known", func(t *testing.T) { inTxn(t, "two", nil) }, "two"},
		{"rolled back: the database", func(t *testing.T) { inTxn(t, "three", errRollback) }, "behind"},
		{"committed again: known", func(t *testing.T) { inTxn(t, "four", nil) }, "four"},
		{"removed: the database", func(t *testing.T) {
			if err := s.RemoveSession(ctx, omemo.V2, addr); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(ctx, `INSERT INTO omemo_session (account, version, jid, device_id, record) VALUES ('acct', $1, $2, $3, 'x')`,
				int(omemo.V2), addr.JID, int64(addr.Device)); err != nil {
				t.Fatal(err)
			}
		}, "behind"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.do(t)
			behind(t, "behind")
			for _, rec := range []string{"one", "two", "three", "four", "behind"} {
				got, err := s.SessionMatches(ctx, omemo.V2, addr, []byte(rec))
				if err != nil {
					t.Fatal(err)
				}
				if got != (rec == tc.match) {
					t.Errorf("SessionMatches(%q) = %v, want a match for %q only", rec, got, tc.match)
				}
			}
		})
	}
}

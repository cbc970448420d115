package bridge

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/mxomemo/xmpp-bridge/migrations"
)

// TestSendingMarksMirror: sendingMarked answers from memory what the table
// says, across marks of an earlier run, marks and clears of this one, two
// Clients of one account, another account, and the sweep.
func TestSendingMarksMirror(t *testing.T) {
	ctx := context.Background()
	raw, err := dbutil.NewWithDialect("file:"+filepath.Join(t.TempDir(), "bridge.db")+"?_txlock=immediate", "sqlite3-fk-wal")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	db := migrations.Child(raw, dbutil.ZeroLogger(zerolog.Nop()))
	if err := db.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	main := &Connector{DB: db}
	client := func(account string) *Client {
		return &Client{main: main, login: &bridgev2.UserLogin{UserLogin: &database.UserLogin{ID: networkid.UserLoginID(account)}}}
	}
	a1, a2, b := client("alice@localhost"), client("alice@localhost"), client("bob@localhost")
	raw1 := func(account, msg string, started time.Time) {
		t.Helper()
		if _, err := db.Exec(ctx, `INSERT INTO delivery_sending (account, message_id, room_id, started) VALUES ($1, $2, '!r:x', $3)`,
			account, msg, started.UnixMilli()); err != nil {
			t.Fatal(err)
		}
	}
	// Marks left by a crashed run, before this process's first check.
	raw1("alice@localhost", "crashed", time.Now())
	raw1("alice@localhost", "old", time.Now().Add(-2*sendingRetention))
	raw1("bob@localhost", "bobs", time.Now())

	steps := []struct {
		name string
		do   func() error
		c    *Client
		id   string
		want bool
	}{
		{"an earlier run's mark", nil, a1, "crashed", true},
		{"the same through the account's other Client", nil, a2, "crashed", true},
		{"an unmarked message", nil, a1, "new", false},
		{"another account's mark is not ours", nil, a1, "bobs", false},
		{"another account's mark", nil, b, "bobs", true},
		{"marked in this run", func() error { return a1.markSending(ctx, "new", "!r:x") }, a2, "new", true},
		{"cleared", func() error { a2.clearSending(ctx, "new"); return nil }, a1, "new", false},
		{"cleared an earlier run's mark", func() error { a1.clearSending(ctx, "crashed"); return nil }, a1, "crashed", false},
		{"an old mark before the sweep", nil, a1, "old", true},
		{"swept", func() error { a1.sweepSending(ctx); return nil }, a1, "old", false},
		{"written behind our back, seen after the sweep's reload", func() error {
			raw1("alice@localhost", "late", time.Now())
			a1.sweepSending(ctx)
			return nil
		}, a2, "late", true},
	}
	for _, s := range steps {
		if s.do != nil {
			if err := s.do(); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
		}
		got, err := s.c.sendingMarked(ctx, networkid.MessageID(s.id))
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		var n int
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM delivery_sending WHERE account=$1 AND message_id=$2`, string(s.c.login.ID), s.id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if got != s.want || got != (n == 1) {
			t.Errorf("%s: sendingMarked = %v, want %v (table has %d rows)", s.name, got, s.want, n)
		}
	}
}

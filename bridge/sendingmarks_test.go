package bridge

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
)

// TestSendingMarksMirror: sendingMarked answers from memory what the table
// says, across marks of an earlier run, marks and clears of this one, two
// Clients of one account, another account, and the sweep.
func TestSendingMarksMirror(t *testing.T) {
	ctx := context.Background()
	db := openIntakeDB(t, "sqlite3-fk-wal", "file:"+filepath.Join(t.TempDir(), "bridge.db")+"?_txlock=immediate")
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
		{"cleared", func() error {
			a2.clearSending(ctx, "new")
			main.sendingMarksOf("alice@localhost").flush(ctx)
			return nil
		}, a1, "new", false},
		{"cleared an earlier run's mark", func() error {
			a1.clearSending(ctx, "crashed")
			main.sendingMarksOf("alice@localhost").flush(ctx)
			return nil
		}, a1, "crashed", false},
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

// TestSendingMarksGroupCommit: marks asked for while a commit runs share the
// next one; a conversion waits for its mark's commit, finds it fresh the
// first time and marked after (a second attempt may follow a send); marks of
// an earlier run are never fresh; clears reach the table with the next
// commit; dropFresh clears only a mark whose message was never converted.
func TestSendingMarksGroupCommit(t *testing.T) {
	ctx := context.Background()
	db := openIntakeDB(t, "sqlite3-fk-wal", "file:"+filepath.Join(t.TempDir(), "bridge.db")+"?_txlock=immediate")
	const account = "alice@localhost"
	if _, err := db.Exec(ctx, `INSERT INTO delivery_sending (account, message_id, room_id, started) VALUES ($1, 'crashed', '!r:x', $2)`,
		account, time.Now().UnixMilli()); err != nil {
		t.Fatal(err)
	}
	main := &Connector{DB: db}
	m := main.sendingMarksOf(account)
	rows := func() map[string]bool {
		t.Helper()
		r, err := db.Query(ctx, `SELECT message_id FROM delivery_sending WHERE account=$1`, account)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		got := map[string]bool{}
		for r.Next() {
			var id string
			if err := r.Scan(&id); err != nil {
				t.Fatal(err)
			}
			got[id] = true
		}
		return got
	}

	if ok, err := m.has(ctx, "crashed"); !ok || err != nil {
		t.Fatalf("an earlier run's mark: %v, %v", ok, err)
	}
	// The writer is held back by the table's lock: a runs alone or with
	// b and c, which share one commit either way.
	m.dbMu.Lock()
	ba := m.prepare(ctx, "a", "bob@localhost")
	bb := m.prepare(ctx, "b", "bob@localhost")
	bc := m.prepare(ctx, "c", "bob@localhost")
	if ba == nil || bb == nil || bb != bc {
		t.Fatalf("batches a %p, b %p, c %p: want b and c in one", ba, bb, bc)
	}
	if m.prepare(ctx, "crashed", "bob@localhost") != nil {
		t.Error("an earlier run's mark was asked for again")
	}
	m.dbMu.Unlock()

	steps := []struct {
		name          string
		id            string
		batch         *markBatch
		marked, exist bool
	}{
		{"first conversion of a", "a", ba, false, true},
		{"second conversion of a (the first may have sent it)", "a", ba, true, true},
		{"first conversion of c", "c", bc, false, true},
		{"an earlier run's mark", "crashed", nil, true, true},
		{"a message never prepared", "x", nil, false, false},
	}
	for _, s := range steps {
		marked, exists, err := m.begin(ctx, networkid.MessageID(s.id), s.batch)
		if err != nil || marked != s.marked || exists != s.exist {
			t.Errorf("%s: begin = %v, %v, %v; want %v, %v", s.name, marked, exists, err, s.marked, s.exist)
		}
	}
	if got := rows(); !got["a"] || !got["b"] || !got["c"] || !got["crashed"] || len(got) != 4 {
		t.Fatalf("rows after the commits: %v", got)
	}

	m.dropFresh(ctx, "a") // converted: stays
	m.dropFresh(ctx, "b") // never converted: cleared
	m.clear(ctx, "c")     // stored
	if got := rows(); !got["b"] || !got["c"] {
		t.Errorf("clears reached the table before a commit: %v", got)
	}
	m.flush(ctx)
	if got := rows(); !got["a"] || got["b"] || got["c"] || !got["crashed"] {
		t.Errorf("rows after the clears' commit: %v, want a and crashed", got)
	}
	if ok, _ := m.has(ctx, "b"); ok {
		t.Error("b still marked in the mirror")
	}
	// A clear is committed on its own within clearDelay.
	m.clear(ctx, "a")
	deadline := time.Now().Add(5 * clearDelay)
	for rows()["a"] {
		if time.Now().After(deadline) {
			t.Fatal("a's clear never reached the table")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

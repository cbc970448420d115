package bridge

import (
	"context"
	"testing"

	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/mxomemo/xmpp-bridge/omemo"
)

// TestOMEMOInboxSendingMark: a decrypted message that will be queued as a
// new message gets its sending mark in the decryption's transaction, fresh
// (its conversion does not look in the room); a correction, a heartbeat, a
// message answered from the inbox again and a decryption whose inbox row
// failed get none there (queueMessage marks what it queues as before).
func TestOMEMOInboxSendingMark(t *testing.T) {
	ctx := context.Background()
	f := newInboxFixture(t)
	marks := f.c.main.sendingMarksOf(f.c.login.ID)
	rows := func(id networkid.MessageID) int {
		t.Helper()
		var n int
		if err := f.db.QueryRow(ctx, `SELECT COUNT(*) FROM delivery_sending WHERE account=$1 AND message_id=$2`, string(f.c.login.ID), string(id)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	m1 := f.stanza(t, "m1", f.encrypt(t, f.bobXC, "hello"))
	for _, tc := range []struct {
		name    string
		receive func() (*incoming, error)
		want    int  // rows in delivery_sending for the message
		fresh   bool // the conversion finds the mark fresh
		failOn  bool // inserts into omemo_inbox fail
	}{
		{"a new message", func() (*incoming, error) { return f.receive(t, m1) }, 1, true, false},
		{"the same stanza, from the inbox", func() (*incoming, error) { return f.receive(t, m1) }, 1, false, false},
		{"a correction", func() (*incoming, error) {
			in, err := parseIncoming(f.stanza(t, "m2", f.encrypt(t, f.bobXC, "hello, corrected")), f.alice)
			if err != nil {
				t.Fatal(err)
			}
			in.Replace = "m1"
			return in, f.c.decryptIncoming(ctx, in)
		}, 0, false, false},
		{"a heartbeat", func() (*incoming, error) {
			empty, err := f.bobXC.EncryptEmpty(ctx, f.alice, f.c.omemoClient().Manager().DeviceID(), omemo.V2)
			if err != nil {
				t.Fatal(err)
			}
			return f.receive(t, f.stanza(t, "m3", empty))
		}, 0, false, false},
		{"the inbox row failed", func() (*incoming, error) { return f.receive(t, f.stanza(t, "m4", f.encrypt(t, f.bobXC, "lost"))) }, 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.failOn {
				if _, err := f.db.Exec(ctx, `CREATE TRIGGER inbox_full BEFORE INSERT ON omemo_inbox BEGIN SELECT RAISE(ABORT, 'disk full'); END`); err != nil {
					t.Fatal(err)
				}
				defer func() { _, _ = f.db.Exec(ctx, `DROP TRIGGER inbox_full`) }()
			}
			in, err := tc.receive()
			if err != nil {
				t.Fatalf("decrypt: %v", err)
			}
			id := f.c.messageID(in)
			if n := rows(id); n != tc.want {
				t.Fatalf("%d sending marks, want %d", n, tc.want)
			}
			if tc.want == 0 {
				if ok, _ := marks.has(ctx, id); ok {
					t.Fatal("the mirror has a mark the table does not")
				}
				return
			}
			marked, exists, err := marks.begin(ctx, id, nil)
			if err != nil || !exists || marked == tc.fresh {
				t.Fatalf("begin: marked %v, exists %v, %v; want fresh %v", marked, exists, err, tc.fresh)
			}
		})
	}
}

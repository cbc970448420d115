package bridge

import (
	"context"
	"database/sql"
	"encoding/xml"
	"testing"

	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/xmpp/reactions"
	"github.com/mxomemo/xmpp-bridge/xmpp/retract"
	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
)

// TestFallbackBodiesNotKept: the OMEMO-encrypted fallback body of a
// retraction or a reaction is never kept in the inbox as text, so it is
// neither stored for 30 days nor queued again as a chat message after a
// reconnect; the reference itself is still bridged.
func TestFallbackBodiesNotKept(t *testing.T) {
	f := newInboxFixture(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		id    string
		extra xml.TokenReader
	}{
		{"retraction", "fb-retract", retract.Retract{ID: "orig-1"}.TokenReader()},
		{"reaction", "fb-react", reactions.Reactions{ID: "orig-1", Emojis: []string{"👍"}}.TokenReader()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := f.encrypt(t, f.bobXC, "This person attempted to "+tc.name+" a previous message")
			from, _ := f.bob.WithResource("phone")
			r, err := omemoxmpp.BuildMessage(stanza.Message{From: from, To: f.alice, ID: tc.id, Type: stanza.ChatMessage}, out, tc.extra)
			if err != nil {
				t.Fatal(err)
			}
			st, err := stanzabuf.Read(r)
			if err != nil {
				t.Fatal(err)
			}
			in, err := f.receive(t, st)
			if err != nil {
				t.Fatal(err)
			}
			if in.Retract == "" && in.Reactions == nil {
				t.Fatal("the reference was not parsed")
			}
			var body sql.NullString
			var kind int
			if err := f.db.QueryRow(ctx, `SELECT body, kind FROM omemo_inbox WHERE xmpp_id=$1`, tc.id).Scan(&body, &kind); err != nil {
				t.Fatal(err)
			}
			if body.Valid || inboxKind(kind) != inboxEmpty {
				t.Errorf("inbox keeps %q (kind %d) for a %s", body.String, kind, tc.name)
			}
		})
	}
	var pending int
	if err := f.db.QueryRow(ctx, `SELECT COUNT(*) FROM omemo_inbox WHERE body IS NOT NULL`).Scan(&pending); err != nil {
		t.Fatal(err)
	}
	if pending != 0 {
		t.Errorf("%d inbox rows would be queued again as chat messages", pending)
	}
}

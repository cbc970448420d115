package bridge

import (
	"context"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// TestSCETo: the OMEMO 2 envelope's <to/> decides which chat a message
// belongs to. A group message delivered as a 1:1 message, or in another
// room, becomes a notice; correctly addressed messages pass.
func TestSCETo(t *testing.T) {
	f := newInboxFixture(t)
	ctx := context.Background()
	roomA, roomB := jid.MustParse("a@muc.localhost"), jid.MustParse("b@muc.localhost")
	// bob only speaks OMEMO 2 here, so that every message has an envelope.
	bob2 := f.bobXC
	groupFor := func(room jid.JID, body string) *omemoxmpp.Outgoing {
		out, err := bob2.EncryptGroup(ctx, room, []jid.JID{f.alice}, body)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	groupStanza := func(room jid.JID, id string, out *omemoxmpp.Outgoing) *stanzabuf.Stanza {
		from, _ := room.WithResource("bob")
		r, err := omemoxmpp.BuildMessage(stanza.Message{From: from, To: f.alice, ID: id, Type: stanza.GroupChatMessage}, out)
		if err != nil {
			t.Fatal(err)
		}
		st, err := stanzabuf.Read(r)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	for i, tc := range []struct {
		name   string
		room   jid.JID // zero: delivered as a 1:1 message
		to     *jid.JID
		body   string
		forged bool
	}{
		{"1:1 without to", jid.JID{}, nil, "plain 1:1", false},
		{"1:1 addressed to us", jid.JID{}, &f.alice, "to alice", false},
		{"group message as 1:1", jid.JID{}, &roomA, "room A secret", true},
		{"1:1 addressed to someone else", jid.JID{}, ptrJID(jid.MustParse("carol@localhost")), "for carol", true},
		{"group message in its room", roomA, &roomA, "hello room A", false},
		{"group message in another room", roomB, &roomA, "room A in B", true},
		{"1:1 message in a room", roomB, nil, "1:1 in B", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out *omemoxmpp.Outgoing
			if tc.to == nil {
				out = f.encrypt(t, bob2, tc.body)
			} else {
				out = groupFor(*tc.to, tc.body)
			}
			id := "sce" + string(rune('a'+i))
			var body string
			var failed bool
			if tc.room.Equal(jid.JID{}) {
				in, err := f.receive(t, f.stanza(t, id, out))
				if err != nil {
					t.Fatal(err)
				}
				body, failed = in.Body, in.OMEMO != nil && in.OMEMO.Failed
			} else {
				r, err := f.c.decryptOMEMO(ctx, omemoJob{Encrypted: (&xmppclient.Message{Raw: groupStanza(tc.room, id, out)}).OMEMO, Sender: f.bob, Peer: tc.room, Room: true,
					MessageID: "room-" + id, XMPPID: id})
				if err != nil || r == nil {
					t.Fatalf("decrypt: %v %v", r, err)
				}
				body, failed = r.Body, r.Info != nil && r.Info.Failed
			}
			if tc.forged {
				if !failed || strings.Contains(body, tc.body) || !strings.Contains(body, "addressed to another chat") {
					t.Errorf("misaddressed message bridged as %q (failed %v), want a notice", body, failed)
				}
				return
			}
			if failed || body != tc.body {
				t.Errorf("got %q (failed %v), want %q", body, failed, tc.body)
			}
		})
	}
}

func ptrJID(j jid.JID) *jid.JID { return &j }

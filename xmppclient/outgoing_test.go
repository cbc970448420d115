package xmppclient

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/xmpp/reply"
)

func encode(t *testing.T, r xml.TokenReader) string {
	t.Helper()
	var b strings.Builder
	enc := xml.NewEncoder(&b)
	if _, err := xmlstream.Copy(enc, r); err != nil {
		t.Fatal(err)
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// fakeEncrypted is an OMEMO result with one element (its content does not
// matter to the stanza around it).
func fakeEncrypted() *omemoxmpp.Outgoing {
	return &omemoxmpp.Outgoing{Elements: []*omemo.Encrypted{{
		Version: omemo.V2, SenderDevice: 1, IV: make([]byte, 12), Payload: []byte("ciphertext"),
		Keys: []omemo.EncryptedKey{{JID: "bob@example.org", Device: 2, Data: []byte("key")}},
	}}}
}

// TestOutgoingStanza: one builder for 1:1 chats and rooms: the body and
// payload in order, a marker request only in 1:1 chats, a room message to
// the room's bare JID, a file's OOB element only in plaintext, and a file
// uploaded for the other kind of chat refused.
func TestOutgoingStanza(t *testing.T) {
	bob := jid.MustParse("bob@example.org/phone")
	room := jid.MustParse("room@muc.example.org/someone")
	for _, tc := range []struct {
		name      string
		out       Outgoing
		enc       bool
		want      []string
		notWant   []string
		changed   bool
		refused   error
		wantExact string
	}{
		{name: "1:1 text", out: Outgoing{To: bob, ID: "mxb-1", Body: "hi <all>"},
			wantExact: `<message type="chat" to="bob@example.org/phone" id="mxb-1"><body>hi &lt;all&gt;</body><markable xmlns="urn:xmpp:chat-markers:0"></markable>` +
				`<origin-id xmlns="urn:xmpp:sid:0" id="mxb-1"></origin-id><active xmlns="http://jabber.org/protocol/chatstates"></active></message>`},
		{name: "room text", out: Outgoing{To: room, Room: true, ID: "mxb-abc", Body: "hi <all>"},
			wantExact: `<message type="groupchat" to="room@muc.example.org" id="mxb-abc"><body>hi &lt;all&gt;</body>` +
				`<origin-id xmlns="urn:xmpp:sid:0" id="mxb-abc"></origin-id><active xmlns="http://jabber.org/protocol/chatstates"></active></message>`},
		{name: "correction and reply", out: Outgoing{To: room, Room: true, ID: "mxb-2", Body: "fixed",
			Replace: "mxb-1", ReplyTo: &reply.Reply{To: jid.MustParse("room@muc.example.org/bob"), ID: "S1"}},
			want: []string{`<replace xmlns="urn:xmpp:message-correct:0" id="mxb-1">`, `<reply xmlns="urn:xmpp:reply:0" to="room@muc.example.org/bob" id="S1">`}},
		{name: "plaintext file", out: Outgoing{To: bob, ID: "f", Body: "https://h/a", Media: &OutgoingMedia{OOB: "https://h/a"}},
			want: []string{`<x xmlns="jabber:x:oob"><url>https://h/a</url></x>`}},
		{name: "plaintext upload in an encrypted chat", out: Outgoing{To: bob, ID: "f", Body: "https://h/a", Media: &OutgoingMedia{OOB: "https://h/a"}},
			enc: true, changed: true},
		{name: "encrypted file", out: Outgoing{To: bob, ID: "f", Body: "aesgcm://h/a#00", Media: &OutgoingMedia{Encrypted: true}},
			enc: true, want: []string{`<encrypted xmlns="urn:xmpp:omemo:2">`, `<origin-id xmlns="urn:xmpp:sid:0" id="f">`}, notWant: []string{"jabber:x:oob", "aesgcm"}},
		{name: "aesgcm link in a plaintext chat", out: Outgoing{To: bob, ID: "f", Body: "aesgcm://h/a#00", Media: &OutgoingMedia{Encrypted: true}},
			changed: true},
		{name: "private message with an occupant", out: Outgoing{To: room, Private: true, ID: "mxb-p", Body: "psst"},
			wantExact: `<message type="chat" to="room@muc.example.org/someone" id="mxb-p"><body>psst</body>` +
				`<origin-id xmlns="urn:xmpp:sid:0" id="mxb-p"></origin-id><x xmlns="http://jabber.org/protocol/muc#user"></x></message>`},
		{name: "encrypted private message", out: Outgoing{To: room, Private: true, ID: "mxb-p", Body: "psst"},
			enc: true, refused: ErrPrivateEncrypted},
		{name: "encrypted room text", out: Outgoing{To: room, Room: true, ID: "g", Body: "secret"},
			enc: true, want: []string{`type="groupchat"`, `to="room@muc.example.org"`}, notWant: []string{"secret", "markable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var enc *omemoxmpp.Outgoing
			if tc.enc {
				enc = fakeEncrypted()
			}
			r, err := tc.out.Stanza(enc)
			if tc.changed {
				if !errors.Is(err, ErrMediaChatChanged) || tc.out.CheckMedia(tc.enc) == nil {
					t.Fatalf("err = %v, want ErrMediaChatChanged", err)
				}
				return
			}
			if tc.refused != nil {
				if !errors.Is(err, tc.refused) {
					t.Fatalf("err = %v, want %v", err, tc.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := encode(t, r)
			if tc.wantExact != "" && got != tc.wantExact {
				t.Errorf("wrong stanza:\nwant=%s\n got=%s", tc.wantExact, got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("stanza lacks %s:\n%s", w, got)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(got, w) {
					t.Errorf("stanza has %s:\n%s", w, got)
				}
			}
		})
	}
}

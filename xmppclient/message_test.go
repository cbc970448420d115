package xmppclient

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/carbons"
	"github.com/mxomemo/xmpp-bridge/xmpp/chatstates"
	"github.com/mxomemo/xmpp-bridge/xmpp/markers"
	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
)

func tokens(t *testing.T, s string) *stanzabuf.Stanza {
	t.Helper()
	st, err := stanzabuf.Read(xml.NewDecoder(strings.NewReader(s)))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

const nsC = ` xmlns="jabber:client"`

func TestParseMessage(t *testing.T) {
	account := jid.MustParse("alice@example.org/bridge")
	type want struct {
		peer      string
		fromMe    bool
		carbon    bool
		id        string
		originID  string
		stanzaID  string
		body      string
		timestamp string
		replace   string
		state     chatstates.State
		markable  bool
		markers   string
		retract   string
		replyTo   string
		reactions string
	}
	for _, tc := range []struct {
		name    string
		xml     string
		want    want
		wantErr error
	}{{
		name: "chat from contact",
		xml:  `<message` + nsC + ` from="bob@example.org/phone" to="alice@example.org/bridge" type="chat" id="m1"><body>hi</body><origin-id xmlns="urn:xmpp:sid:0" id="o1"/><stanza-id xmlns="urn:xmpp:sid:0" id="s1" by="alice@example.org"/></message>`,
		want: want{peer: "bob@example.org", id: "m1", originID: "o1", stanzaID: "s1", body: "hi"},
	}, {
		name: "stanza-id by someone else is not trusted",
		xml:  `<message` + nsC + ` from="bob@example.org/phone" type="chat" id="m1"><body>hi</body><stanza-id xmlns="urn:xmpp:sid:0" id="evil" by="bob@example.org"/></message>`,
		want: want{peer: "bob@example.org", id: "m1", body: "hi"},
	}, {
		name: "no id falls back to origin-id",
		xml:  `<message` + nsC + ` from="bob@example.org/phone" type="chat"><body>hi</body><origin-id xmlns="urn:xmpp:sid:0" id="o2"/></message>`,
		want: want{peer: "bob@example.org", id: "o2", originID: "o2", body: "hi"},
	}, {
		name: "no id falls back to stanza-id",
		xml:  `<message` + nsC + ` from="bob@example.org/phone" type="chat"><body>hi</body><stanza-id xmlns="urn:xmpp:sid:0" id="s3" by="alice@example.org"/></message>`,
		want: want{peer: "bob@example.org", id: "sid:s3", stanzaID: "s3", body: "hi"},
	}, {
		name: "normal type and delayed",
		xml:  `<message` + nsC + ` from="bob@example.org" id="m4"><body>offline</body><delay xmlns="urn:xmpp:delay" stamp="2026-11-20T10:00:00Z"/></message>`,
		want: want{peer: "bob@example.org", id: "m4", body: "offline", timestamp: "2026-11-20T10:00:00Z"},
	}, {
		name: "sent carbon is from me, chat is the recipient",
		xml: `<message` + nsC + ` to="alice@example.org/bridge" type="chat"><sent xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0">` +
			`<message xmlns="jabber:client" from="alice@example.org/laptop" to="bob@example.org" type="chat" id="m5"><body>from laptop</body><origin-id xmlns="urn:xmpp:sid:0" id="m5"/></message>` +
			`</forwarded></sent></message>`,
		want: want{peer: "bob@example.org", fromMe: true, carbon: true, id: "m5", originID: "m5", body: "from laptop"},
	}, {
		name: "received carbon is from the contact",
		xml: `<message` + nsC + ` to="alice@example.org/bridge" type="chat"><received xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0">` +
			`<message xmlns="jabber:client" from="bob@example.org/phone" to="alice@example.org/laptop" type="chat" id="m6"><body>to laptop</body></message>` +
			`</forwarded></received></message>`,
		want: want{peer: "bob@example.org", carbon: true, id: "m6", body: "to laptop"},
	}, {
		name: "carbon from a contact is forged",
		xml: `<message` + nsC + ` from="mallory@example.org/x" to="alice@example.org/bridge" type="chat"><sent xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0">` +
			`<message xmlns="jabber:client" from="alice@example.org/laptop" to="bob@example.org" type="chat" id="m7"><body>fake</body></message>` +
			`</forwarded></sent></message>`,
		wantErr: carbons.ErrForged,
	}, {
		name: "sent carbon of someone else's message is forged",
		xml: `<message` + nsC + ` to="alice@example.org/bridge" type="chat"><sent xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0">` +
			`<message xmlns="jabber:client" from="mallory@example.org/x" to="bob@example.org" type="chat" id="m8"><body>fake</body></message>` +
			`</forwarded></sent></message>`,
		wantErr: carbons.ErrForged,
	}, {
		name: "message from own other client",
		xml:  `<message` + nsC + ` from="alice@example.org/laptop" type="chat" id="m9"><body>note</body></message>`,
		want: want{peer: "alice@example.org", fromMe: true, id: "m9", body: "note"},
	}, {
		name:    "groupchat never takes the 1:1 path (handleGroupchat has it)",
		xml:     `<message` + nsC + ` from="room@muc.example.org/bob" type="groupchat" id="g1"><body>hi all</body></message>`,
		wantErr: ErrIgnored,
	}, {
		name:    "error message",
		xml:     `<message` + nsC + ` from="bob@example.org" type="error" id="e1"><error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`,
		wantErr: ErrIgnored,
	}, {
		name:    "no sender",
		xml:     `<message` + nsC + ` type="chat" id="x"><body>?</body></message>`,
		wantErr: ErrIgnored,
	}, {
		name: "chat state only has no body",
		xml:  `<message` + nsC + ` from="bob@example.org/phone" type="chat" id="c1"><composing xmlns="http://jabber.org/protocol/chatstates"/></message>`,
		want: want{peer: "bob@example.org", id: "c1", state: chatstates.Composing},
	}, {
		name: "message with active state, markable",
		xml:  `<message` + nsC + ` from="bob@example.org/phone" type="chat" id="c2"><body>x</body><active xmlns="http://jabber.org/protocol/chatstates"/><markable xmlns="urn:xmpp:chat-markers:0"/></message>`,
		want: want{peer: "bob@example.org", id: "c2", body: "x", state: chatstates.Active, markable: true},
	}, {
		name: "broken chat state does not lose the text",
		xml:  `<message` + nsC + ` from="bob@example.org/phone" type="chat" id="c3"><body>x</body><typing xmlns="http://jabber.org/protocol/chatstates"/></message>`,
		want: want{peer: "bob@example.org", id: "c3", body: "x"},
	}, {
		name: "displayed marker",
		xml:  `<message` + nsC + ` from="bob@example.org/phone" type="chat" id="d1"><displayed xmlns="urn:xmpp:chat-markers:0" id="m1"/></message>`,
		want: want{peer: "bob@example.org", id: "d1", markers: "displayed:m1"},
	}, {
		name: "correction",
		xml:  `<message` + nsC + ` from="bob@example.org/phone" type="chat" id="r2"><body>fixed</body><replace xmlns="urn:xmpp:message-correct:0" id="r1"/></message>`,
		want: want{peer: "bob@example.org", id: "r2", body: "fixed", replace: "r1"},
	}, {
		name: "reply with quote fallback",
		xml: `<message` + nsC + ` from="bob@example.org/phone" type="chat" id="re1"><body>&gt; original&#10;answer</body>` +
			`<reply xmlns="urn:xmpp:reply:0" to="alice@example.org/laptop" id="o9"/>` +
			`<fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:reply:0"><body start="0" end="11"/></fallback></message>`,
		want: want{peer: "bob@example.org", id: "re1", body: "answer", replyTo: "alice@example.org/laptop#o9"},
	}, {
		name: "reply without author or fallback",
		xml:  `<message` + nsC + ` from="bob@example.org/phone" type="chat" id="re2"><body>&gt; kept</body><reply xmlns="urn:xmpp:reply:0" id="o8"/></message>`,
		want: want{peer: "bob@example.org", id: "re2", body: "> kept", replyTo: "#o8"},
	}, {
		name: "reactions",
		xml:  `<message` + nsC + ` from="bob@example.org/phone" type="chat" id="rx1"><reactions xmlns="urn:xmpp:reactions:0" id="m1"><reaction>👍</reaction><reaction>🎉</reaction><reaction>👍</reaction></reactions><store xmlns="urn:xmpp:hints"/></message>`,
		want: want{peer: "bob@example.org", id: "rx1", reactions: "m1:👍🎉"},
	}, {
		name: "reactions removed",
		xml:  `<message` + nsC + ` from="bob@example.org/phone" type="chat" id="rx2"><reactions xmlns="urn:xmpp:reactions:0" id="m1"/></message>`,
		want: want{peer: "bob@example.org", id: "rx2", reactions: "m1:"},
	}, {
		name: "retraction",
		xml: `<message` + nsC + ` from="bob@example.org/phone" type="chat" id="rt1"><retract xmlns="urn:xmpp:message-retract:1" id="m1"/>` +
			`<fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:message-retract:1"/><body>This person attempted to retract a previous message, but it's unsupported by your client.</body></message>`,
		want: want{peer: "bob@example.org", id: "rt1", retract: "m1", body: "This person attempted to retract a previous message, but it's unsupported by your client."},
	}, {
		name: "displayed marker from my other client, via carbon",
		xml: `<message` + nsC + ` to="alice@example.org/bridge" type="chat"><sent xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0">` +
			`<message xmlns="jabber:client" from="alice@example.org/laptop" to="bob@example.org" type="chat" id="d2"><displayed xmlns="urn:xmpp:chat-markers:0" id="b7"/></message>` +
			`</forwarded></sent></message>`,
		want: want{peer: "bob@example.org", fromMe: true, carbon: true, id: "d2", markers: "displayed:b7"},
	}, {
		name: "prefers body without xml:lang",
		xml:  `<message` + nsC + ` from="bob@example.org/phone" type="chat" id="l1"><body xml:lang="de">hallo</body><body>hello</body></message>`,
		want: want{peer: "bob@example.org", id: "l1", body: "hello"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := ParseMessage(tokens(t, tc.xml), account)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := want{peer: in.Peer.String(), fromMe: in.FromMe, carbon: in.Carbon, id: in.XMPPID, originID: in.OriginID, stanzaID: in.StanzaID, body: in.Body,
				replace: in.Replace, state: in.ChatState, markable: in.Markable, markers: markerString(in.Markers), retract: in.Retract}
			if in.Reactions != nil {
				got.reactions = in.Reactions.ID + ":" + strings.Join(in.Reactions.Emojis, "")
			}
			if in.ReplyTo != nil {
				got.replyTo = in.ReplyTo.To.String() + "#" + in.ReplyTo.ID
			}
			if !in.Timestamp.IsZero() {
				got.timestamp = in.Timestamp.UTC().Format(time.RFC3339)
			}
			if got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// Messages without any id get a stable synthetic one, so the same stanza
// delivered twice is deduplicated, and different stanzas are not.
func TestParseMessageHashID(t *testing.T) {
	account := jid.MustParse("alice@example.org")
	a := `<message xmlns="jabber:client" from="bob@example.org/p" type="chat"><body>one</body></message>`
	b := `<message xmlns="jabber:client" from="bob@example.org/p" type="chat"><body>two</body></message>`
	in1, err := ParseMessage(tokens(t, a), account)
	if err != nil {
		t.Fatal(err)
	}
	in2, _ := ParseMessage(tokens(t, a), account)
	in3, _ := ParseMessage(tokens(t, b), account)
	if !strings.HasPrefix(in1.XMPPID, "hash:") || in1.XMPPID != in2.XMPPID || in1.XMPPID == in3.XMPPID {
		t.Fatalf("ids %q %q %q", in1.XMPPID, in2.XMPPID, in3.XMPPID)
	}
}

func markerString(ms []markers.Marker) string {
	var parts []string
	for _, m := range ms {
		parts = append(parts, string(m.Kind)+":"+m.ID)
	}
	return strings.Join(parts, ",")
}

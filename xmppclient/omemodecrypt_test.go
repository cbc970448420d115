package xmppclient

import (
	"errors"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
)

// TestCheckEnvelopeTo: the OMEMO 2 envelope's <to/> against the chat the
// message came in (TestSCETo in bridge runs it through decryption).
func TestCheckEnvelopeTo(t *testing.T) {
	alice, bob := jid.MustParse("alice@example.org"), jid.MustParse("bob@example.org")
	room := jid.MustParse("room@muc.example.org")
	msg := func(v omemo.Version, to string) *omemoxmpp.Message {
		return &omemoxmpp.Message{Version: v, To: to}
	}
	for _, tc := range []struct {
		name   string
		msg    *omemoxmpp.Message
		peer   jid.JID
		room   bool
		fromMe bool
		bad    bool
	}{
		{"no message", nil, bob, false, false, false},
		{"0.3 has no envelope", msg(omemo.V03, "carol@example.org"), bob, false, false, false},
		{"1:1 not addressed", msg(omemo.V2, ""), bob, false, false, false},
		{"1:1 to us", msg(omemo.V2, "alice@example.org/phone"), bob, false, false, false},
		{"1:1 to someone else", msg(omemo.V2, "carol@example.org"), bob, false, false, true},
		{"ours to the contact", msg(omemo.V2, "bob@example.org"), bob, false, true, false},
		{"ours to someone else", msg(omemo.V2, "carol@example.org"), bob, false, true, true},
		{"room to its room", msg(omemo.V2, "room@muc.example.org"), room, true, false, false},
		{"room not addressed", msg(omemo.V2, ""), room, true, false, true},
		{"room message as 1:1", msg(omemo.V2, "room@muc.example.org"), bob, false, false, true},
		{"unparsable to", msg(omemo.V2, "@@"), bob, false, false, true},
	} {
		err := CheckEnvelopeTo(tc.msg, tc.peer, tc.room, tc.fromMe, alice)
		if got := errors.Is(err, ErrSCEMisaddressed); got != tc.bad || (!tc.bad && err != nil) {
			t.Errorf("%s: %v, want misaddressed %v", tc.name, err, tc.bad)
		}
	}
}

// TestNotForUs: only an element set without payload and without a key for
// our device is someone else's key transport.
func TestNotForUs(t *testing.T) {
	alice := jid.MustParse("alice@example.org")
	keyed := func(jidStr string, dev uint32) *omemo.Encrypted {
		return &omemo.Encrypted{Version: omemo.V2, Keys: []omemo.EncryptedKey{{JID: jidStr, Device: dev}}}
	}
	withPayload := keyed("bob@example.org", 2)
	withPayload.Payload = []byte{1}
	for _, tc := range []struct {
		name string
		els  []*omemo.Encrypted
		want bool
	}{
		{"key transport for another device", []*omemo.Encrypted{keyed("alice@example.org", 9)}, true},
		{"key transport for us", []*omemo.Encrypted{keyed("alice@example.org", 7)}, false},
		{"a message with payload", []*omemo.Encrypted{withPayload}, false},
	} {
		if got := NotForUs(&omemoxmpp.Received{Elements: tc.els}, alice, 7); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

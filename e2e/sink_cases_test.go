package e2e

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"html"
	"strings"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
)

// sinkCase is one kind of chat the sink benchmark drives both ways: a 1:1 chat or a room,
// plaintext or OMEMO.
type sinkCase struct {
	name   string
	portal string // the portal's Matrix room (in the sink)
	room   string // the room's JID, for room cases

	// sender writes the XMPP → Matrix messages; build makes their stanzas before the clock
	// starts (OMEMO: encrypted then), one send function per message with the given stanza ids.
	sender *harness.Peer
	build  func(ctx context.Context, tb testing.TB, ids, bodies []string) []func(context.Context) error
	// witness gets every XMPP → Matrix stanza from the XMPP server as the bridge's session
	// does (a second resource of the account, or another occupant of the room): its arrival is
	// the server's own delivery time, which the bridge's added latency is measured from.
	witness *harness.Peer

	// receiver gets the bridge's Matrix → XMPP messages; fromBridge picks them out of what it
	// receives, bodies gives their plaintexts in order (OMEMO: decrypted after the run).
	receiver   *harness.Peer
	fromBridge func(harness.ReceivedMessage) bool
	bodies     func(ctx context.Context, tb testing.TB, ms []harness.ReceivedMessage) []string
	// shadow sends a plaintext message by the same route from an XMPP client (the server's own
	// delivery time at that moment); isShadow picks it out of what the receiver receives.
	shadow   func(ctx context.Context, body string) error
	isShadow func(harness.ReceivedMessage) bool

	// The burst-tap phases (e2e/internal/xmpptap, sink_tap_test.go): raw prepares a builder of
	// the sender's stanzas as XML text (OMEMO: encrypted then), which the tap readdresses as the
	// server delivers them (from tapFrom, with a stanza-id by the archive's owner) and injects;
	// the bridge's messages to capTo (a bare JID, any resource) are taken out of its stream.
	raw     func(ctx context.Context, tb testing.TB) func(id, body string) []byte
	tapFrom string
	capTo   string
}

// plainChats builds 1:1 chat messages to account.
func plainChats(p *harness.Peer, to jid.JID) func(context.Context, testing.TB, []string, []string) []func(context.Context) error {
	return func(_ context.Context, _ testing.TB, ids, bodies []string) []func(context.Context) error {
		out := make([]func(context.Context) error, len(ids))
		for i := range ids {
			id, body := ids[i], bodies[i]
			out[i] = func(ctx context.Context) error { return p.SendChat(ctx, to, id, "", body) }
		}
		return out
	}
}

// plainGroupchats builds groupchat messages to room.
func plainGroupchats(p *harness.Peer, room jid.JID) func(context.Context, testing.TB, []string, []string) []func(context.Context) error {
	return func(_ context.Context, _ testing.TB, ids, bodies []string) []func(context.Context) error {
		out := make([]func(context.Context) error, len(ids))
		for i := range ids {
			raw := fmt.Sprintf(`<message xmlns="jabber:client" to=%q type="groupchat" id=%q><body>%s</body></message>`,
				room.String(), ids[i], html.EscapeString(bodies[i]))
			out[i] = func(ctx context.Context) error { return p.SendRaw(ctx, raw) }
		}
		return out
	}
}

// omemoMessages builds OMEMO messages from xc to a contact (members nil) or to a room, all
// encrypted before they are sent (in order: one ratchet chain).
func omemoMessages(p *harness.Peer, xc *omemoxmpp.Client, to jid.JID, members []jid.JID) func(context.Context, testing.TB, []string, []string) []func(context.Context) error {
	return func(ctx context.Context, tb testing.TB, ids, bodies []string) []func(context.Context) error {
		typ, prep := stanza.ChatMessage, xc.Prepare(ctx, to)
		if members != nil {
			typ, prep = stanza.GroupChatMessage, xc.PrepareGroup(ctx, to, members)
		}
		out := make([]func(context.Context) error, len(ids))
		for i := range ids {
			enc, err := xc.EncryptPrepared(ctx, prep, bodies[i])
			if err != nil {
				tb.Fatalf("encrypting for %s: %v", to, err)
			}
			r, err := omemoxmpp.BuildMessage(stanza.Message{To: to, Type: typ, ID: ids[i]}, enc)
			if err != nil {
				tb.Fatal(err)
			}
			out[i] = func(ctx context.Context) error { return p.Session.Send(ctx, r) }
		}
		return out
	}
}

// plainBodies is bodies for plaintext messages.
func plainBodies(_ context.Context, _ testing.TB, ms []harness.ReceivedMessage) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Body
	}
	return out
}

// omemoBodies decrypts the bridge's OMEMO messages (from account) with xc, in order.
func omemoBodies(xc *omemoxmpp.Client, account jid.JID) func(context.Context, testing.TB, []harness.ReceivedMessage) []string {
	return func(ctx context.Context, tb testing.TB, ms []harness.ReceivedMessage) []string {
		out := make([]string, len(ms))
		for i, m := range ms {
			if m.OMEMO == nil {
				tb.Fatalf("a plaintext message from the bridge in an OMEMO chat: %q", m.Body)
			}
			dec, err := xc.Decrypt(ctx, account, &omemoxmpp.Received{Elements: []*omemo.Encrypted{m.OMEMO}})
			if err != nil {
				tb.Fatalf("decrypting the bridge's message %d: %v", i, err)
			}
			out[i] = dec.Body
		}
		return out
	}
}

// fromAccount picks the direct (non-carbon) chat messages from account's resources; omemo
// says whether they must be encrypted.
func fromAccount(account jid.JID, omemo bool) func(harness.ReceivedMessage) bool {
	return func(m harness.ReceivedMessage) bool {
		return !m.Carbon && strings.HasPrefix(m.From, account.String()+"/") && (m.OMEMO != nil && m.OMEMO.Payload != nil) == omemo
	}
}

// fromOccupant picks groupchat messages from room whose sender's nick is not one of others.
func fromOccupant(room jid.JID, omemo bool, others ...string) func(harness.ReceivedMessage) bool {
	return func(m harness.ReceivedMessage) bool {
		nick, ok := strings.CutPrefix(m.From, room.String()+"/")
		if !ok || m.Type != "groupchat" || (m.OMEMO != nil && m.OMEMO.Payload != nil) != omemo {
			return false
		}
		for _, o := range others {
			if nick == o {
				return false
			}
		}
		return true
	}
}

// roomJoin enters room with nick and waits for the peer's own presence from the room.
func roomJoin(ctx context.Context, tb testing.TB, p *harness.Peer, room jid.JID, nick string) {
	tb.Helper()
	cur := p.PresenceCursor()
	occ := room.String() + "/" + nick
	if err := p.SendRaw(ctx, fmt.Sprintf(`<presence xmlns="jabber:client" to=%q><x xmlns="http://jabber.org/protocol/muc"><history maxstanzas="0"/></x></presence>`, occ)); err != nil {
		tb.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := p.WaitPresence(wctx, cur, func(pr harness.ReceivedPresence) bool { return pr.From == occ }); err != nil {
		tb.Fatalf("%s could not join %s: %v", p.JID, occ, err)
	}
}

// roomIQs counts the IQ gets Prosody received for room (the info line
// ProsodyOptions.LogIQGets has it log for each): the bridge's questions to the room, the
// affiliation lists asked before an OMEMO message among them. 0 for no room.
func roomIQs(p *testenv.Prosody, room string) int {
	if room == "" {
		return 0
	}
	return p.IQGets(room)
}

// rawStanzas builds plaintext messages of type typ to to as XML text.
func rawStanzas(to jid.JID, typ stanza.MessageType) func(context.Context, testing.TB) func(id, body string) []byte {
	return func(context.Context, testing.TB) func(id, body string) []byte {
		return func(id, body string) []byte {
			return fmt.Appendf(nil, `<message xmlns="jabber:client" to=%q type=%q id=%q><body>%s</body></message>`,
				to.String(), typ, id, html.EscapeString(body))
		}
	}
}

// rawOMEMO is omemoMessages as XML text: the same stanzas, prepared (devices, sessions) once
// and encrypted one by one before the clock starts.
func rawOMEMO(xc *omemoxmpp.Client, to jid.JID, members []jid.JID) func(context.Context, testing.TB) func(id, body string) []byte {
	return func(ctx context.Context, tb testing.TB) func(id, body string) []byte {
		typ, prep := stanza.ChatMessage, xc.Prepare(ctx, to)
		if members != nil {
			typ, prep = stanza.GroupChatMessage, xc.PrepareGroup(ctx, to, members)
		}
		return func(id, body string) []byte {
			enc, err := xc.EncryptPrepared(ctx, prep, body)
			if err != nil {
				tb.Fatalf("encrypting for %s: %v", to, err)
			}
			r, err := omemoxmpp.BuildMessage(stanza.Message{To: to, Type: typ, ID: id}, enc)
			if err != nil {
				tb.Fatal(err)
			}
			var buf bytes.Buffer
			e := xml.NewEncoder(&buf)
			if _, err := xmlstream.Copy(e, r); err != nil {
				tb.Fatalf("encoding an OMEMO message: %v", err)
			}
			if err := e.Flush(); err != nil {
				tb.Fatal(err)
			}
			return buf.Bytes()
		}
	}
}

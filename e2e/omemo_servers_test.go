package e2e

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
)

// TestOMEMOServers runs 1:1 OMEMO between the bridge and contacts whose device is our own
// omemoxmpp client, on Prosody and on ejabberd (stock configuration: it refuses
// pubsub#max_items in publish-options and offers a channel binding it refuses on TLS 1.3),
// one contact per version, with no presence subscription anywhere (so no device-list pushes):
//   - OMEMO by default: a chat the Matrix user starts is encrypted from its first message,
//     because the contact publishes a device (the bridge fetches the lists itself);
//   - the contact's OMEMO messages appear decrypted in the portal, and the Matrix replies go
//     out encrypted;
//   - a contact's new device is learnt when a message comes from it, and the next Matrix
//     message reaches it too;
//   - a new device that only announces itself is learnt through the bridge's subscription to
//     the contact's device lists (XEP-0060, taken when the chat started).
func TestOMEMOServers(t *testing.T) {
	for _, server := range []string{"prosody", "ejabberd"} {
		t.Run(server, func(t *testing.T) {
			t.Parallel()
			runOMEMOServers(t, server)
		})
	}
}

func runOMEMOServers(t *testing.T, server string) {
	s := newStackOn(t, server, "sqlite", testenv.ProsodyOptions{})
	alice, alicePW := s.account(t, "salice")
	u := s.matrixUser(t, "mxservers")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	mgmt := s.loginUser(ctx, t, u, alice, alicePW)

	t.Run("PlaintextContactThenUndecryptable", func(t *testing.T) {
		// A contact without OMEMO devices: the chat goes out unencrypted, and the room is told.
		contact, contactPW := s.account(t, "splain")
		peer := s.peer(t, contact, contactPW, "phone")
		room := startChat(ctx, t, s, u, mgmt, contact)
		plain := uniq("plaintext to a contact without OMEMO")
		cur := peer.Cursor()
		if _, err := u.Client.SendText(ctx, room, plain); err != nil {
			t.Fatal(err)
		}
		sctx, scancel := stepCtx()
		defer scancel()
		if _, _, err := peer.WaitMessage(sctx, cur, bodyIs(plain)); err != nil {
			t.Fatalf("the plaintext message: %v", err)
		}
		if _, _, err := u.WaitEvent(sctx, room, 0, harness.IsMessage(s.bot, "NOT encrypted")); err != nil {
			t.Fatalf("no \"not encrypted\" notice: %v", err)
		}
		// The contact sends OMEMO the bridge cannot decrypt (for another device): a notice, and
		// the chat is encrypted from now on; with no device to encrypt for, the next Matrix
		// message is refused, never sent in plaintext.
		if err := peer.SendRaw(sctx, `<message xmlns="jabber:client" type="chat" to="`+alice.String()+`" id="`+uniq("u")+`">`+
			`<encrypted xmlns="urn:xmpp:omemo:2"><header sid="4242"><keys jid="`+alice.String()+`"><key rid="999">AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=</key></keys></header>`+
			`<payload>AAAAAAAAAAAAAAAA</payload></encrypted><body>fallback</body></message>`); err != nil {
			t.Fatal(err)
		}
		if _, _, err := u.WaitEvent(sctx, room, 0, harness.IsMessage("", "Could not decrypt an OMEMO message")); err != nil {
			t.Fatalf("no notice for the undecryptable message: %v", err)
		}
		secret := uniq("must not go out in plaintext")
		cur = peer.Cursor()
		if _, err := u.Client.SendText(ctx, room, secret); err != nil {
			t.Fatal(err)
		}
		if _, _, err := u.WaitEvent(sctx, room, 0, harness.IsMessage("", "Not sent: this chat is OMEMO-encrypted")); err != nil {
			t.Fatalf("no refusal notice: %v", err)
		}
		for _, m := range peer.Received()[cur:] {
			if strings.Contains(m.Body, secret) {
				t.Fatalf("sent in plaintext after the contact's OMEMO message: %+v", m)
			}
		}
	})

	for _, v := range []omemo.Version{omemo.V2, omemo.V03} {
		t.Run("OMEMO"+v.String(), func(t *testing.T) {
			contact, contactPW := s.account(t, "scontact"+strings.ReplaceAll(v.String(), ".", ""))
			peer := s.peer(t, contact, contactPW, "phone")
			xc := versionPeer(ctx, t, peer, contact, alice, v)

			// The Matrix user starts the chat and writes first.
			room := startChat(ctx, t, s, u, mgmt, contact)
			first := uniq("first message, encrypted by default")
			cur := peer.Cursor()
			if _, err := u.Client.SendText(ctx, room, first); err != nil {
				t.Fatal(err)
			}
			if body := waitDecrypt(ctx, t, peer, xc, alice, cur); body != first {
				t.Fatalf("decrypted %q, want %q", body, first)
			}
			for _, m := range peer.Received() {
				if strings.Contains(m.Body, first) {
					t.Fatalf("the first message reached the contact in plaintext: %+v", m)
				}
			}

			// The contact answers over OMEMO; the answer appears in the portal.
			answer := uniq("omemo answer")
			sendOMEMOTo(ctx, t, peer, xc, alice, answer)
			if _, _, err := u.WaitEvent(ctx, room, 0, harness.IsMessage(s.ghost(contact), answer)); err != nil {
				t.Fatalf("the contact's OMEMO answer: %v", err)
			}

			if v == omemo.V2 {
				envelopeStyles(ctx, t, s, u, room, peer, xc, contact, alice)
			}

			// A second device of the contact writes; the bridge did not know it (no pushes
			// without a subscription) and must encrypt the next message for it as well.
			tablet := s.peer(t, contact, contactPW, "tablet")
			xc2 := versionPeer(ctx, t, tablet, contact, alice, v)
			fromTablet := uniq("hello from the new device")
			sendOMEMOTo(ctx, t, tablet, xc2, alice, fromTablet)
			if _, _, err := u.WaitEvent(ctx, room, 0, harness.IsMessage(s.ghost(contact), fromTablet)); err != nil {
				t.Fatalf("the new device's message: %v", err)
			}
			next := uniq("for both devices")
			cur2 := tablet.Cursor()
			deadline := time.Now().Add(stepTimeout)
			for {
				// The fetch after the unknown device's message runs in the background: a
				// message sent before it completes may still miss the new device.
				if _, err := u.Client.SendText(ctx, room, next); err != nil {
					t.Fatal(err)
				}
				wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
				body, err := tryDecrypt(wctx, tablet, xc2, alice, cur2)
				wcancel()
				if err == nil && body == next {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the new device never got a Matrix message it could decrypt: %q, %v", body, err)
				}
				cur2 = tablet.Cursor()
			}

			// A third device only announces itself and does not write: the bridge's
			// subscription to the contact's device lists (taken when the chat started, no
			// presence subscription) brings the change, and a Matrix message reaches it.
			desk := s.peer(t, contact, contactPW, "desk")
			xc3 := versionPeer(ctx, t, desk, contact, alice, v)
			later := uniq("for the silent new device")
			cur3 := desk.Cursor()
			deadline = time.Now().Add(stepTimeout)
			for {
				if _, err := u.Client.SendText(ctx, room, later); err != nil {
					t.Fatal(err)
				}
				wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
				body, err := tryDecrypt(wctx, desk, xc3, alice, cur3)
				wcancel()
				if err == nil && body == later {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("a device that only announced itself never got a Matrix message: %q, %v", body, err)
				}
				cur3 = desk.Cursor()
			}
		})
	}
}

// startChatRoomRE finds the portal's room ID in start-chat's answer (a matrix.to link).
var startChatRoomRE = regexp.MustCompile(`(![A-Za-z0-9]+:[A-Za-z0-9.\-]+)`)

// startChat runs start-chat for contact and joins the portal it names (the invite may reach
// the user's sync late on a loaded machine; joining by ID does not wait for it).
func startChat(ctx context.Context, t *testing.T, s *stack, u *harness.MatrixUser, mgmt id.RoomID, contact jid.JID) id.RoomID {
	t.Helper()
	got, err := u.Command(ctx, mgmt, s.bot, "start-chat "+contact.String(), nil)
	if err != nil || !strings.HasPrefix(got, "Created chat with") {
		t.Fatalf("start-chat: %q, %v", got, err)
	}
	m := startChatRoomRE.FindString(got)
	if m == "" {
		t.Fatalf("no room in the start-chat answer %q", got)
	}
	room := id.RoomID(m)
	deadline := time.Now().Add(stepTimeout)
	for {
		jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := u.Client.JoinRoomByID(jctx, room)
		cancel()
		if err == nil {
			return room
		}
		if time.Now().After(deadline) {
			t.Fatalf("joining the portal %s: %v", room, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// envelopeStyles sends OMEMO 2 messages whose SCE envelopes are written as other libraries
// write them (ElementTree's ns0:/ns1: prefixes, which once decrypted to an empty body and
// vanished) and one that holds nothing the bridge can show: the first appear with their text,
// the last as a notice, none silently dropped.
func envelopeStyles(ctx context.Context, t *testing.T, s *stack, u *harness.MatrixUser, room id.RoomID, p *harness.Peer, xc *omemoxmpp.Client, contact, account jid.JID) {
	t.Helper()
	set, err := xc.Devices(ctx, account)
	if err != nil || len(set) == 0 {
		t.Fatalf("the bridge's devices: %v, %v", set, err)
	}
	var bridgeDev uint32
	for d := range set {
		bridgeDev = d
	}
	send := func(envelope string) {
		t.Helper()
		enc, _, err := xc.Manager().Encrypt(ctx, omemo.V2, []byte(envelope), []omemo.Recipient{{Address: omemo.Address{JID: account.String(), Device: bridgeDev}}})
		if err != nil {
			t.Fatal(err)
		}
		r, err := omemoxmpp.BuildMessage(stanza.Message{To: account, Type: stanza.ChatMessage}, &omemoxmpp.Outgoing{Elements: []*omemo.Encrypted{enc}})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Session.Send(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	etree := uniq("elementtree prefixes")
	send(`<ns0:envelope xmlns:ns0="urn:xmpp:sce:1" xmlns:ns1="jabber:client"><ns0:content><ns1:body>` + etree +
		`</ns1:body></ns0:content><ns0:rpad>abc</ns0:rpad><ns0:from jid="` + contact.String() + `" /></ns0:envelope>`)
	if _, _, err := u.WaitEvent(ctx, room, 0, harness.IsMessage(s.ghost(contact), etree)); err != nil {
		t.Fatalf("the ElementTree-style envelope: %v", err)
	}
	pretty := uniq("indented, with an affix")
	send("<?xml version='1.0'?>\n<envelope xmlns='urn:xmpp:sce:1'>\n  <content>\n    <body xmlns='jabber:client'>" + pretty +
		"</body>\n  </content>\n  <nonce xmlns='urn:example:affix'>1</nonce>\n  <from jid='" + contact.String() + "'/>\n</envelope>\n")
	if _, _, err := u.WaitEvent(ctx, room, 0, harness.IsMessage(s.ghost(contact), pretty)); err != nil {
		t.Fatalf("the indented envelope: %v", err)
	}
	send(`<envelope xmlns='urn:xmpp:sce:1'><content><reactions xmlns='urn:xmpp:reactions:0' id='x'><reaction>👍</reaction></reactions></content><from jid='` + contact.String() + `'/></envelope>`)
	if _, _, err := u.WaitEvent(ctx, room, 0, harness.IsMessage("", "Could not show an OMEMO message")); err != nil {
		t.Fatalf("no notice for an envelope without readable content: %v", err)
	}
}

// versionPeer gives a contact's session an OMEMO device of version v and waits until it sees
// the bridge's device in account's device list.
func versionPeer(ctx context.Context, t *testing.T, p *harness.Peer, own, account jid.JID, v omemo.Version) *omemoxmpp.Client {
	t.Helper()
	store := omemo.NewMemoryStore()
	m := omemo.NewManager(store, own.String(), omemo.Options{PreKeys: 20})
	if err := m.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	xc, err := omemoxmpp.NewSession(m, store, p.Session, omemoxmpp.Options{Label: "e2e", Versions: []omemo.Version{v}})
	if err != nil {
		t.Fatal(err)
	}
	if err := xc.Announce(ctx); err != nil {
		t.Fatalf("the contact's announcement: %v", err)
	}
	deadline := time.Now().Add(stepTimeout)
	for {
		set, err := xc.FetchDevices(ctx, account)
		if err == nil && len(set) > 0 {
			return xc
		}
		if time.Now().After(deadline) {
			t.Fatalf("no OMEMO %s device of %s: %v", v, account, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func sendOMEMOTo(ctx context.Context, t *testing.T, p *harness.Peer, xc *omemoxmpp.Client, to jid.JID, text string) {
	t.Helper()
	out, err := xc.Encrypt(ctx, to, text)
	if err != nil {
		t.Fatal(err)
	}
	r, err := omemoxmpp.BuildMessage(stanza.Message{To: to, Type: stanza.ChatMessage}, out)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Session.Send(ctx, r); err != nil {
		t.Fatal(err)
	}
}

// waitDecrypt waits for the next OMEMO message with a body from account after cursor and
// returns its decrypted text.
func waitDecrypt(ctx context.Context, t *testing.T, p *harness.Peer, xc *omemoxmpp.Client, account jid.JID, cursor int) string {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	body, err := tryDecrypt(wctx, p, xc, account, cursor)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// tryDecrypt decrypts the OMEMO messages from account after cursor until one has a body.
func tryDecrypt(ctx context.Context, p *harness.Peer, xc *omemoxmpp.Client, account jid.JID, cursor int) (string, error) {
	for {
		m, next, err := p.WaitMessage(ctx, cursor, func(m harness.ReceivedMessage) bool {
			return !m.Carbon && m.OMEMO != nil && m.OMEMO.Payload != nil && strings.HasPrefix(m.From, account.String()+"/")
		})
		if err != nil {
			return "", err
		}
		cursor = next
		from := jid.MustParse(m.From)
		dec, err := xc.Decrypt(ctx, from, &omemoxmpp.Received{From: from, Elements: []*omemo.Encrypted{m.OMEMO}})
		if err != nil {
			return "", err
		}
		if dec.Body != "" {
			return dec.Body, nil
		}
	}
}

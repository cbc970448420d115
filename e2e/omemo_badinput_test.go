package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
	"github.com/mxomemo/xmpp-bridge/omemo"
)

// badInput is what the bad-input checks need from a running OMEMO scenario with Libervia.
type badInput struct {
	s      *stack
	nio    *testenv.MatrixPeer
	room   string
	lib    *testenv.LiberviaPeer
	prof   string
	user   jid.JID // the bridged account
	phone  *harness.Peer
	tamper *harness.Peer // a second client of the contact's account, sending what Libervia did not
}

const fallbackBody = "I sent you an OMEMO encrypted message but your client doesn't seem to support that."

// run sends, per OMEMO version, Libervia's real ciphertexts tampered with and replayed, plus one
// forged carbon, through Prosody into the bridge:
//   - a copy of Libervia's last message whose ratchet counter claims the next message (so its
//     MAC cannot verify) gets the "failed authentication" notice;
//   - a copy whose key is addressed to another device gets the "not encrypted for the bridge's
//     device" notice;
//   - a verbatim replay under a new stanza id is dropped without a notice;
//   - a carbon "sent by the user" but coming from the contact's account is dropped;
//
// and Libervia's next real message, at the very counter the tampered copy claimed, still decrypts.
// No fallback body ever reaches Matrix.
func (b *badInput) run(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*stepTimeout)
	defer cancel()
	notices := func() int { return b.countBodies(t, "Could not decrypt an OMEMO message from") }
	baseNotices := notices()
	for i, backend := range []string{"twomemo", "oldmemo"} {
		// A real message from Libervia, seen by the account's plain client with its ciphertext.
		cur := b.phone.Cursor()
		captured := uniq("captured " + backend + " message")
		b.lib.Run(t, "send", b.prof, backend, b.user.String(), captured)
		b.nio.WaitMessage(t, b.room, captured, stepTimeout)
		m, _, err := b.phone.WaitMessage(ctx, cur, func(m harness.ReceivedMessage) bool {
			return m.OMEMO != nil && !m.CarbonSent && strings.HasPrefix(m.From, b.tamper.JID.Bare().String()+"/")
		})
		if err != nil {
			t.Fatalf("%s: the account's plain client saw no OMEMO message from Libervia: %v", backend, err)
		}
		enc := m.OMEMO
		var ours []int
		for k := range enc.Keys {
			if enc.Version == omemo.V03 || enc.Keys[k].JID == b.user.String() {
				ours = append(ours, k)
			}
		}
		if len(ours) != 1 || enc.Keys[ours[0]].KeyExchange {
			t.Fatalf("%s: want one established-session key for the bridge's device, got %+v", backend, enc.Keys)
		}
		k := ours[0]

		bumped := cloneEncrypted(enc)
		data, err := bumpCounter(enc.Version, enc.Keys[k].Data)
		if err != nil {
			t.Fatalf("%s: %v", backend, err)
		}
		bumped.Keys[k].Data = data
		b.sendEncrypted(t, ctx, uniq("bumped"), bumped)
		b.waitNotices(t, baseNotices+2*i+1, "it failed authentication")

		elsewhere := cloneEncrypted(enc)
		elsewhere.Keys[k].Device ^= 0x5a5a5a
		b.sendEncrypted(t, ctx, uniq("elsewhere"), elsewhere)
		b.waitNotices(t, baseNotices+2*i+2, "it was not encrypted for the bridge's device")

		replayID := uniq("replay")
		b.sendEncrypted(t, ctx, replayID, enc)
		b.waitLog(t, "replayed OMEMO message", replayID)

		forgedID := uniq("forged")
		b.sendForgedCarbon(t, ctx, forgedID, enc)
		b.waitLog(t, "Dropping forged carbon")

		// Libervia's next message uses the counter the tampered copy claimed.
		next := uniq("after bad input " + backend)
		b.lib.Run(t, "send", b.prof, backend, b.user.String(), next)
		got := b.nio.WaitMessage(t, b.room, next, stepTimeout)
		if !got.Encrypted || !got.Decrypted || got.Sender != b.s.ghost(b.tamper.JID.Bare()).String() {
			t.Fatalf("%s: after bad input nio saw %+v", backend, got)
		}
		if n := b.countBodies(t, captured); n != 1 {
			t.Errorf("%s: the replayed message appears %d times in the portal", backend, n)
		}
		// Two notices per round, one per tampered copy: none for the replay or the carbon.
		b.waitNotices(t, baseNotices+2*i+2, "")
	}
	msgs, _ := b.nio.Messages(t, b.room)
	for _, m := range msgs[max(0, len(msgs)-12):] {
		t.Logf("portal: %s", m.Body)
	}
	if n := b.countBodies(t, fallbackBody); n != 0 {
		t.Errorf("the OMEMO fallback body reached the portal %d times", n)
	}
	if n := b.countBodies(t, "Could not decrypt an OMEMO message from you"); n != 0 {
		t.Errorf("the forged carbon was taken for the user's own message (%d notices)", n)
	}
}

// sendEncrypted sends enc from the contact's second client as a chat message with the usual
// fallback body and storage hint, as OMEMO clients do.
func (b *badInput) sendEncrypted(t *testing.T, ctx context.Context, id string, enc *omemo.Encrypted) {
	t.Helper()
	raw, err := enc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// <private/> keeps the tampered copies from Libervia, another client of the same account.
	stanza := fmt.Sprintf(`<message to='%s' type='chat' id='%s'>%s<body>%s</body><store xmlns='urn:xmpp:hints'/>`+
		`<private xmlns='urn:xmpp:carbons:2'/></message>`,
		b.user, id, raw, fallbackBody)
	if err := b.tamper.SendRaw(ctx, stanza); err != nil {
		t.Fatal(err)
	}
}

// sendForgedCarbon sends, from the contact's account, a carbon claiming that the user sent enc.
func (b *badInput) sendForgedCarbon(t *testing.T, ctx context.Context, id string, enc *omemo.Encrypted) {
	t.Helper()
	raw, err := enc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	stanza := fmt.Sprintf(`<message to='%s' type='chat' id='%s'><sent xmlns='urn:xmpp:carbons:2'>`+
		`<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='%s/forged' to='%s' type='chat' id='%s-inner'>`+
		`%s<body>%s</body></message></forwarded></sent><private xmlns='urn:xmpp:carbons:2'/></message>`,
		b.user, id, b.user, b.tamper.JID.Bare(), id, raw, fallbackBody)
	if err := b.tamper.SendRaw(ctx, stanza); err != nil {
		t.Fatal(err)
	}
}

func (b *badInput) countBodies(t *testing.T, substr string) int {
	t.Helper()
	msgs, _ := b.nio.Messages(t, b.room)
	n := 0
	for _, m := range msgs {
		if strings.Contains(m.Body, substr) {
			n++
		}
	}
	return n
}

// waitNotices waits until the portal holds exactly want decryption notices, the newest
// containing reason (when given), and fails if more appear.
func (b *badInput) waitNotices(t *testing.T, want int, reason string) {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		msgs, _ := b.nio.Messages(t, b.room)
		var notices []string
		for _, m := range msgs {
			if strings.HasPrefix(m.Body, "Could not decrypt an OMEMO message from") {
				notices = append(notices, m.Body)
			}
		}
		switch {
		case len(notices) > want:
			t.Fatalf("%d decryption notices, want %d: %s", len(notices), want, shortList(notices))
		case len(notices) == want && (reason == "" || strings.Contains(notices[len(notices)-1], reason)):
			return
		case time.Now().After(deadline):
			t.Fatalf("want %d decryption notices (newest: %q), have %s", want, reason, shortList(notices))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// waitLog waits for a bridge log line holding every substring.
func (b *badInput) waitLog(t *testing.T, substrings ...string) {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for b.s.bridge.CountLog(substrings...) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no bridge log line with %q; tail:\n%s", substrings, b.s.bridge.Tail(3000))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func cloneEncrypted(e *omemo.Encrypted) *omemo.Encrypted {
	c := *e
	c.Keys = slices.Clone(e.Keys)
	for i := range c.Keys {
		c.Keys[i].Data = slices.Clone(e.Keys[i].Data)
	}
	return &c
}

// bumpCounter rewrites the ratchet message counter of an established-session key (OMEMO 0.3:
// version byte, SignalMessage, 8-byte MAC; OMEMO 2: OMEMOAuthenticatedMessage holding an
// OMEMOMessage) to the next one, leaving the MAC as it was: a message at a fresh position whose
// authentication must fail.
func bumpCounter(v omemo.Version, data []byte) ([]byte, error) {
	switch v {
	case omemo.V03:
		if len(data) < 1+8 || data[0] != 0x33 {
			return nil, errors.New("not an OMEMO 0.3 SignalMessage")
		}
		body, err := bumpField(data[1:len(data)-8], 2)
		if err != nil {
			return nil, err
		}
		return slices.Concat([]byte{0x33}, body, data[len(data)-8:]), nil
	case omemo.V2:
		var out []byte
		err := eachField(data, func(num protowire.Number, typ protowire.Type, raw, value []byte) error {
			if num == 2 && typ == protowire.BytesType {
				inner, err := bumpField(value, 1)
				if err != nil {
					return err
				}
				out = protowire.AppendTag(out, num, typ)
				out = protowire.AppendBytes(out, inner)
				return nil
			}
			out = append(out, raw...)
			return nil
		})
		return out, err
	}
	return nil, fmt.Errorf("unknown OMEMO version %v", v)
}

// bumpField adds one to the varint field num of a protobuf message.
func bumpField(msg []byte, num protowire.Number) ([]byte, error) {
	var out []byte
	found := false
	err := eachField(msg, func(n protowire.Number, typ protowire.Type, raw, _ []byte) error {
		if n == num && typ == protowire.VarintType {
			v, _ := protowire.ConsumeVarint(raw[protowire.SizeTag(n):])
			out = protowire.AppendTag(out, n, typ)
			out = protowire.AppendVarint(out, v+1)
			found = true
			return nil
		}
		out = append(out, raw...)
		return nil
	})
	if err == nil && !found {
		err = fmt.Errorf("no varint field %d", num)
	}
	return out, err
}

// eachField calls f with every field of a protobuf message: its raw bytes and, for length-
// delimited fields, the value.
func eachField(msg []byte, f func(protowire.Number, protowire.Type, []byte, []byte) error) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, msg[n:])
		if m < 0 {
			return protowire.ParseError(m)
		}
		var value []byte
		if typ == protowire.BytesType {
			value, _ = protowire.ConsumeBytes(msg[n:])
		}
		if err := f(num, typ, msg[:n+m], value); err != nil {
			return err
		}
		msg = msg[n+m:]
	}
	return nil
}

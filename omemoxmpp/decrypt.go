package omemoxmpp

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/xmpp/xmltok"
)

// Message is a decrypted OMEMO message.
type Message struct {
	Version omemo.Version
	// Sender is the sending device (bare JID and device id).
	Sender omemo.Address
	// Body is the message text: for 0.3 the plaintext with the whitespace
	// padding some clients add trimmed, for OMEMO 2 the envelope's
	// jabber:client <body/>. Empty for empty messages, and for envelopes
	// without a body (Libervia, for one, wraps 0.3 key transport elements
	// in OMEMO 2 envelopes): show no chat message when Body is "".
	Body string
	// Content is, for OMEMO 2, the inner XML of the envelope's <content/>
	// (the body and any other encrypted elements); nil for 0.3.
	Content []byte
	// To is, for OMEMO 2, the envelope's <to/>: the room of a group message
	// (check it against the room the message came from); usually "" in 1:1.
	To string
	// Empty is set for messages without payload: key transport and
	// heartbeats. They must never be shown as chat messages.
	Empty bool
	// Trust is the sender device's stored trust; Trusted applies the
	// Manager's policy. Flag messages from untrusted devices.
	Trust   omemo.TrustLevel
	Trusted bool
	// KeyChanged: the sender device's identity key is new for a device id
	// that had another one; tell the user (it is not trusted blindly).
	KeyChanged bool
	// Fingerprint is the sender device's identity key as clients show it.
	Fingerprint string
	// PreKeyConsumed: call Client.Republish.
	PreKeyConsumed bool
	// SendHeartbeat: answer with Client.EncryptEmpty for Sender and Version
	// and send it (BuildMessage) so the sender's ratchet moves on.
	SendHeartbeat bool
}

// Received is what FindEncrypted takes out of a message stanza.
type Received struct {
	// From is the stanza's from (zero when it had none).
	From jid.JID
	// Elements are the <encrypted/> children, of either namespace.
	Elements []*omemo.Encrypted
}

// FindEncrypted reads a message stanza from r (starting with <message>)
// and returns its <encrypted/> elements. ErrNotEncrypted when there are
// none; a malformed element is an error wrapping omemo.ErrMalformed (and r
// may then be left before the stanza's end). The stanza is decoded as it is
// read, not copied first: a room's message carries a key for every
// member's device.
func FindEncrypted(r xml.TokenReader) (*Received, error) {
	d := xml.NewTokenDecoder(xmltok.CloseOpen(r))
	var start xml.StartElement
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil, fmt.Errorf("%w: no stanza", ErrMalformed)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		if s, ok := tok.(xml.StartElement); ok {
			start = s
			break
		}
		if _, ok := tok.(xml.EndElement); ok {
			return nil, fmt.Errorf("%w: no stanza", ErrMalformed)
		}
	}
	if start.Name.Local != "message" {
		return nil, fmt.Errorf("%w: not a message stanza", ErrMalformed)
	}
	msg, err := stanza.NewMessage(start)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	out := &Received{From: msg.From}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		if _, end := tok.(xml.EndElement); end {
			break // </message>
		}
		s, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if _, isOMEMO := omemo.VersionOf(s.Name.Space); !isOMEMO || s.Name.Local != "encrypted" {
			if err := d.Skip(); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
			}
			continue
		}
		var enc omemo.Encrypted
		if err := d.DecodeElement(&enc, &s); err != nil {
			if !errors.Is(err, omemo.ErrMalformed) {
				err = fmt.Errorf("%w: %w", omemo.ErrMalformed, err)
			}
			return nil, fmt.Errorf("failed to parse <encrypted xmlns=%q/>: %w", s.Name.Space, err)
		}
		out.Elements = append(out.Elements, &enc)
	}
	if len(out.Elements) == 0 {
		return nil, ErrNotEncrypted
	}
	return out, nil
}

// pick returns the element holding a key for our device, OMEMO 2 first.
func (c *Client) pick(els []*omemo.Encrypted) *omemo.Encrypted {
	own, dev := c.m.OwnJID(), c.m.DeviceID()
	for _, v := range []omemo.Version{omemo.V2, omemo.V03} {
		if !c.speaks(v) {
			continue
		}
		for _, e := range els {
			if e.Version == v && e.KeyFor(own, dev) != nil {
				return e
			}
		}
	}
	return nil
}

// Decrypt decrypts a received message: the element with a key for our
// device (OMEMO 2 preferred) is decrypted as sent by the bare JID of sender
// (the stanza's from; for a MUC message the occupant's real JID; the zero
// JID means our own account). Errors wrap omemo.ErrNotForThisDevice,
// omemo.ErrBadMAC, omemo.ErrDuplicate, omemo.ErrMalformed,
// omemo.ErrEnvelope (OMEMO 2 from mismatch), … for the bridge's notices.
// With ErrEnvelope the Message is returned too, without body: the ratchet
// moved on, so its PreKeyConsumed and SendHeartbeat still apply.
func (c *Client) Decrypt(ctx context.Context, sender jid.JID, rcv *Received) (*Message, error) {
	if sender.Equal(jid.JID{}) {
		sender = c.own
	}
	sender = sender.Bare()
	enc := c.pick(rcv.Elements)
	if enc == nil {
		return nil, fmt.Errorf("%w (device %d)", omemo.ErrNotForThisDevice, c.m.DeviceID())
	}
	dec, err := c.m.Decrypt(ctx, enc, sender.String())
	if err != nil {
		return nil, err
	}
	out := &Message{
		Version:        dec.Version,
		Sender:         dec.Sender,
		Empty:          dec.Plaintext == nil,
		Trust:          dec.Trust,
		Trusted:        dec.Trusted,
		KeyChanged:     dec.KeyChanged,
		PreKeyConsumed: dec.PreKeyConsumed,
		SendHeartbeat:  dec.SendHeartbeat,
	}
	out.Fingerprint, _ = omemo.Fingerprint(omemo.V03, dec.IdentityKey)
	if out.Empty {
		return out, nil
	}
	if dec.Version == omemo.V03 {
		// Matrix needs valid UTF-8; 0.3 plaintext is raw bytes.
		out.Body = strings.ToValidUTF8(strings.TrimSpace(string(dec.Plaintext)), "\uFFFD")
		return out, nil
	}
	env, err := omemo.ParseEnvelope(dec.Plaintext, sender.String())
	if err != nil {
		// The ratchet already moved on; the flags still matter.
		return out, err
	}
	out.Content, out.To = env.Content, env.To
	if out.Body, err = readContent(env.Content); err != nil {
		return out, err
	}
	return out, nil
}

// DecryptStanza is FindEncrypted and Decrypt with the stanza's from as
// sender (1:1 chats and carbons' inner messages).
func (c *Client) DecryptStanza(ctx context.Context, r xml.TokenReader) (*Message, error) {
	rcv, err := FindEncrypted(r)
	if err != nil {
		return nil, err
	}
	return c.Decrypt(ctx, rcv.From, rcv)
}

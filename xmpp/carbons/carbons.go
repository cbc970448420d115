package carbons

import (
	"encoding/xml"
	"errors"
	"fmt"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/delay"
	"mellium.im/xmpp/forward"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/children"
	"github.com/mxomemo/xmpp-bridge/xmpp/xmltok"
)

// NS is the namespace of XEP-0280 version 2.
const NS = "urn:xmpp:carbons:2"

// Errors returned by Parse. Callers drop the stanza on ErrForged and
// ErrMalformed and treat it as an ordinary message on ErrNotCarbon.
var (
	ErrNotCarbon = errors.New("carbons: message is not a carbon copy")
	ErrForged    = errors.New("carbons: carbon not sent by the account's own bare JID")
	ErrMalformed = errors.New("carbons: malformed carbon")
)

// Carbon is one carbon copy, unwrapped.
type Carbon struct {
	// Sent is true for <sent/> (our account sent it from another client) and
	// false for <received/> (another client of ours received it).
	Sent bool

	// Delay is the optional <delay/> of the <forwarded/> element; its Time
	// is zero when there was none.
	Delay delay.Delay

	// Message is the forwarded message's header (from, to, type, id).
	Message stanza.Message

	tokens []xml.Token
}

// Inner returns a new reader over the whole forwarded message, starting with
// its <message> start element. It can be called any number of times.
func (c Carbon) Inner() xml.TokenReader {
	return xmltok.Replay(c.tokens)
}

// Parse reads a message stanza from r and unwraps it if it is a carbon for
// account (the session's JID; only its bare part is used).
//
// The outer message must come from account's bare JID or have no from; the
// forwarded message must have been sent by the account (sent) or addressed to
// it (received) when it says who it was from or to. Otherwise ErrForged.
func Parse(r xml.TokenReader, account jid.JID) (Carbon, error) {
	var (
		c     Carbon
		found bool
	)
	outer, err := children.Each(r, func(d *xml.Decoder, start xml.StartElement) (bool, error) {
		if start.Name.Space != NS || (start.Name.Local != "sent" && start.Name.Local != "received") {
			return false, nil
		}
		if found {
			return true, fmt.Errorf("%w: more than one sent/received element", ErrMalformed)
		}
		found = true
		c.Sent = start.Name.Local == "sent"
		return true, parseWrapper(d, &c)
	})
	if err != nil {
		if !found && errors.Is(err, children.ErrNotElement) {
			return Carbon{}, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		return Carbon{}, err
	}
	if !found {
		return Carbon{}, ErrNotCarbon
	}
	msg, err := stanza.NewMessage(outer)
	if err != nil {
		return Carbon{}, fmt.Errorf("%w: bad outer message: %w", ErrMalformed, err)
	}
	own := account.Bare()
	if !msg.From.Equal(jid.JID{}) && !msg.From.Equal(own) {
		return Carbon{}, fmt.Errorf("%w: from %s", ErrForged, msg.From)
	}
	inner := c.Message
	if c.Sent && !inner.From.Equal(jid.JID{}) && !inner.From.Bare().Equal(own) {
		return Carbon{}, fmt.Errorf("%w: sent carbon of a message from %s", ErrForged, inner.From)
	}
	if !c.Sent && !inner.To.Equal(jid.JID{}) && !inner.To.Bare().Equal(own) {
		return Carbon{}, fmt.Errorf("%w: received carbon of a message to %s", ErrForged, inner.To)
	}
	return c, nil
}

// parseWrapper reads the inside of <sent/> or <received/>: exactly one
// <forwarded/> holding an optional <delay/> and exactly one <message/>.
func parseWrapper(d *xml.Decoder, c *Carbon) error {
	sawForwarded := false
	for {
		tok, err := d.Token()
		if err != nil {
			return fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			if !sawForwarded {
				return fmt.Errorf("%w: no forwarded element", ErrMalformed)
			}
			return nil
		case xml.StartElement:
			if t.Name.Space != forward.NS || t.Name.Local != "forwarded" || sawForwarded {
				return fmt.Errorf("%w: unexpected %s element in carbon", ErrMalformed, t.Name.Local)
			}
			sawForwarded = true
			if err := parseForwarded(d, c); err != nil {
				return err
			}
		}
	}
}

func parseForwarded(d *xml.Decoder, c *Carbon) error {
	for {
		tok, err := d.Token()
		if err != nil {
			return fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			if c.tokens == nil {
				return fmt.Errorf("%w: no forwarded message", ErrMalformed)
			}
			return nil
		case xml.StartElement:
			switch {
			case t.Name.Space == delay.NS && t.Name.Local == "delay":
				if err := d.DecodeElement(&c.Delay, &t); err != nil {
					return fmt.Errorf("%w: bad delay: %w", ErrMalformed, err)
				}
			case t.Name.Local == "message" && (t.Name.Space == stanza.NSClient || t.Name.Space == stanza.NSServer):
				if c.tokens != nil {
					return fmt.Errorf("%w: more than one forwarded message", ErrMalformed)
				}
				msg, err := stanza.NewMessage(t)
				if err != nil {
					return fmt.Errorf("%w: bad forwarded message: %w", ErrMalformed, err)
				}
				toks, err := xmltok.Capture(d, t)
				if err != nil {
					return fmt.Errorf("%w: %w", ErrMalformed, err)
				}
				c.Message, c.tokens = msg, toks
			default:
				if err := d.Skip(); err != nil {
					return fmt.Errorf("%w: %w", ErrMalformed, err)
				}
			}
		}
	}
}

// Wrap returns a carbon copy of msg (a complete message stanza) as the
// server would send it to account. It exists for tests and for servers;
// clients never send carbons.
func Wrap(account jid.JID, sent bool, msg xml.TokenReader) xml.TokenReader {
	local := "received"
	if sent {
		local = "sent"
	}
	return stanza.Message{From: account.Bare(), To: account, Type: stanza.NormalMessage}.Wrap(
		xmlstream.Wrap(
			xmlstream.Wrap(msg, xml.StartElement{Name: xml.Name{Space: forward.NS, Local: "forwarded"}}),
			xml.StartElement{Name: xml.Name{Space: NS, Local: local}},
		),
	)
}

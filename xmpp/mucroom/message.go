package mucroom

import (
	"encoding/xml"
	"errors"
	"fmt"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/children"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucadmin"
	"github.com/mxomemo/xmpp-bridge/xmpp/sid"
	"github.com/mxomemo/xmpp-bridge/xmpp/xmltok"
)

// ErrNotGroupchat is returned by ParseMessage for other stanzas.
var ErrNotGroupchat = errors.New("mucroom: not a groupchat message")

// Message is a type=groupchat message as the room relays it.
type Message struct {
	// From is room@service/nick, or the room's bare JID for messages of
	// the room itself (status changes, notices).
	From jid.JID
	ID   string
	// OriginID is the sender's XEP-0359 origin-id: the room keeps it when
	// it reflects our own messages back to us.
	OriginID string
	// StanzaID is the id the room stamped on the message (a stanza-id by
	// the room's bare JID); references to groupchat messages use it.
	StanzaID string
	Body     string
	// Subject is set when the message changes the room's subject: a
	// <subject/> without a <body/> (§8.1); an empty one clears it.
	Subject *string
	// Delay is when the room received a delayed message (history, the
	// subject sent after a join).
	Delay time.Time
	// User holds status codes of the room's own messages (§10.2.1).
	User    mucadmin.User
	HasUser bool
}

// Nick is the sender's nickname, empty for the room itself.
func (m Message) Nick() string { return m.From.Resourcepart() }

type text struct {
	Lang string `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
	Text string `xml:",chardata"`
}

// pick prefers the text without xml:lang, else the first.
func pick(ts []text) (string, bool) {
	for _, t := range ts {
		if t.Lang == "" {
			return t.Text, true
		}
	}
	if len(ts) > 0 {
		return ts[0].Text, true
	}
	return "", false
}

// ParseMessage reads one groupchat message from r. Only the room may stamp
// the stanza-id that is kept (by = the sender's bare JID, which is the room).
func ParseMessage(r xml.TokenReader) (Message, error) {
	var (
		m                Message
		bodies, subjects []text
		ids              sid.IDs
		delay            *time.Time
	)
	start, err := children.Each(r, func(d *xml.Decoder, start xml.StartElement) (bool, error) {
		switch {
		case start.Name.Local == "body" && (start.Name.Space == stanza.NSClient || start.Name.Space == ""):
			var t text
			err := d.DecodeElement(&t, &start)
			bodies = append(bodies, t)
			return true, err
		case start.Name.Local == "subject" && (start.Name.Space == stanza.NSClient || start.Name.Space == ""):
			var t text
			err := d.DecodeElement(&t, &start)
			subjects = append(subjects, t)
			return true, err
		case start.Name.Space == sid.NS && start.Name.Local == "origin-id":
			var o sid.OriginID
			if err := d.DecodeElement(&o, &start); err != nil {
				return true, err
			}
			if ids.OriginID == "" {
				ids.OriginID = o.ID
			}
			return true, nil
		case start.Name.Space == sid.NS && start.Name.Local == "stanza-id":
			var s sid.StanzaID
			if err := d.DecodeElement(&s, &start); err != nil {
				return true, err
			}
			ids.StanzaIDs = append(ids.StanzaIDs, s)
			return true, nil
		case start.Name.Space == "urn:xmpp:delay" && start.Name.Local == "delay" && delay == nil:
			stamp, _ := children.Attr(start, "stamp")
			if t, err := time.Parse(time.RFC3339, stamp); err == nil {
				delay = &t
			}
			return false, nil
		case start.Name.Space == mucadmin.NSUser && start.Name.Local == "x":
			if m.HasUser {
				return false, fmt.Errorf("%w: more than one muc#user element", mucadmin.ErrMalformed)
			}
			toks, err := xmltok.Capture(d, start)
			if err != nil {
				return true, err
			}
			m.User, m.HasUser, err = mucadmin.ParseUser(wrapIn(toks, "message"))
			return true, err
		}
		return false, nil
	})
	if err != nil {
		return Message{}, fmt.Errorf("failed to read groupchat message: %w", err)
	}
	if typ, _ := children.Attr(start, "type"); start.Name.Local != "message" || typ != string(stanza.GroupChatMessage) {
		return Message{}, ErrNotGroupchat
	}
	from, _ := children.Attr(start, "from")
	if m.From, err = jid.Parse(from); err != nil || from == "" {
		return Message{}, fmt.Errorf("%w: bad from %q", mucadmin.ErrMalformed, from)
	}
	m.ID, _ = children.Attr(start, "id")
	m.OriginID = ids.OriginID
	m.StanzaID, _ = ids.StanzaIDBy(m.From.Bare())
	m.Body, _ = pick(bodies)
	if s, ok := pick(subjects); ok && len(bodies) == 0 {
		m.Subject = &s
	}
	if delay != nil {
		m.Delay = *delay
	}
	return m, nil
}

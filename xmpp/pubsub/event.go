package pubsub

import (
	"encoding/xml"
	"errors"
	"fmt"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/children"
)

// ErrNoEvent is returned by ParseEvent for a message without an <event/>.
var ErrNoEvent = errors.New("pubsub: message has no event")

// Event is a pubsub notification (XEP-0060 §7.1.2.1, XEP-0163 §4.3).
type Event struct {
	// From is the message's from: the PEP account (bare JID) or pubsub
	// service whose node changed. The zero JID means the account's own
	// server or bare JID (mellium's session blanks a from equal to our bare
	// JID).
	From jid.JID

	// Node is the node the notification is about.
	Node string

	// Items are the published items (with or without payload).
	Items []Item

	// Retracted are the ids of deleted items.
	Retracted []string

	// Purged and Deleted report a <purge/> or <delete/> of the node.
	Purged, Deleted bool
}

// ParseEvent reads a message stanza from r and returns the pubsub
// notification it carries.
func ParseEvent(r xml.TokenReader) (Event, error) {
	var (
		ev    Event
		found bool
	)
	outer, err := children.Each(r, func(d *xml.Decoder, start xml.StartElement) (bool, error) {
		if start.Name.Space != NSEvent || start.Name.Local != "event" {
			return false, nil
		}
		if found {
			return true, fmt.Errorf("%w: more than one event", ErrMalformed)
		}
		found = true
		return true, parseEventBody(d, &ev)
	})
	if err != nil {
		return Event{}, err
	}
	if !found {
		return Event{}, ErrNoEvent
	}
	msg, err := stanza.NewMessage(outer)
	if err != nil {
		return Event{}, fmt.Errorf("%w: bad message: %w", ErrMalformed, err)
	}
	ev.From = msg.From
	return ev, nil
}

// parseEventBody reads the children of <event/>: exactly one of <items/>,
// <purge/>, <delete/> (<configuration/> and <subscription/> are skipped).
func parseEventBody(d *xml.Decoder, ev *Event) error {
	seen := false
	for {
		tok, err := d.Token()
		if err != nil {
			return fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			if !seen {
				return fmt.Errorf("%w: empty event", ErrMalformed)
			}
			return nil
		case xml.StartElement:
			if seen {
				return fmt.Errorf("%w: event with more than one child", ErrMalformed)
			}
			seen = true
			if t.Name.Space != NSEvent {
				return fmt.Errorf("%w: unexpected <%s xmlns=%q/> in event", ErrMalformed, t.Name.Local, t.Name.Space)
			}
			ev.Node = attrValue(t, "node")
			switch t.Name.Local {
			case "items":
				if ev.Node == "" {
					return fmt.Errorf("%w: items without node", ErrMalformed)
				}
				if ev.Items, ev.Retracted, err = parseItems(d, NSEvent); err != nil {
					return err
				}
				continue
			case "purge":
				ev.Purged = true
			case "delete":
				ev.Deleted = true
			}
			if err := d.Skip(); err != nil {
				return fmt.Errorf("%w: %w", ErrMalformed, err)
			}
		}
	}
}

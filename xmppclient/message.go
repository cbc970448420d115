package xmppclient

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/carbons"
	"github.com/mxomemo/xmpp-bridge/xmpp/chatstates"
	"github.com/mxomemo/xmpp-bridge/xmpp/correct"
	"github.com/mxomemo/xmpp-bridge/xmpp/fallback"
	"github.com/mxomemo/xmpp-bridge/xmpp/markers"
	"github.com/mxomemo/xmpp-bridge/xmpp/nick"
	"github.com/mxomemo/xmpp-bridge/xmpp/reactions"
	"github.com/mxomemo/xmpp-bridge/xmpp/reply"
	"github.com/mxomemo/xmpp-bridge/xmpp/retract"
	"github.com/mxomemo/xmpp-bridge/xmpp/sid"
	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
)

// Message is a 1:1 message stanza as the client reads it, after carbons have
// been unwrapped and checked.
type Message struct {
	// Peer is the contact's bare JID: the chat the message belongs to.
	Peer jid.JID
	// FromMe is set for messages our account sent from another client.
	FromMe bool
	// Carbon is set when the message arrived as a carbon copy.
	Carbon bool
	// Archived is set for results of our archive catch-up.
	Archived bool

	Type      stanza.MessageType
	XMPPID    string
	OriginID  string
	StanzaID  string
	Body      string
	Timestamp time.Time

	Refs
	// ChatState is the XEP-0085 state, if any.
	ChatState chatstates.State
	// Markable and Markers are the XEP-0333 request and markers.
	Markable bool
	Markers  []markers.Marker

	// Raw is the (unwrapped) message, for payloads handled later in the
	// pipeline such as OMEMO's <encrypted/>.
	Raw *stanzabuf.Stanza
}

// Refs are the references of a message to an earlier one, the same in 1:1
// chats and group chats (only what the ids name differs).
type Refs struct {
	// Replace is the id of the message this one corrects (XEP-0308).
	Replace string
	// Retract is the id of the message this one retracts (XEP-0424).
	Retract string
	// ReplyTo is the message this one replies to (XEP-0461); its To may
	// be zero when the sender did not name the author.
	ReplyTo *reply.Reply
	// Reactions is the sender's full reaction set to one message (XEP-0444).
	Reactions *reactions.Reactions
}

// ParseRefs reads the references of a message. Malformed ones are ignored,
// so that a broken element cannot cost the user the message text.
//
// Each parser reads the whole stanza, and most messages have none of these
// elements: a parser runs only when its element is a child of the stanza
// (stanzabuf.HasChild reads the buffered tokens without a decoder).
func ParseRefs(st *stanzabuf.Stanza) Refs {
	var refs Refs
	if st.HasChild(correct.NS, "replace") {
		if id, ok, err := correct.Parse(st.Reader()); err == nil && ok {
			refs.Replace = id
		}
	}
	if st.HasChild(retract.NS, "retract") || st.HasChild(retract.NSFasten, "apply-to") {
		if id, ok, err := retract.Parse(st.Reader()); err == nil && ok {
			refs.Retract = id
		}
	}
	if st.HasChild(reply.NS, "reply") {
		if rep, ok, err := reply.Parse(st.Reader()); err == nil && ok {
			refs.ReplyTo = &rep
		}
	}
	if st.HasChild(reactions.NS, "reactions") {
		if r, ok, err := reactions.Parse(st.Reader()); err == nil && ok {
			refs.Reactions = &r
		}
	}
	return refs
}

// StripReplyFallback removes the quote of a reply's body: the reply is a
// relation on the other side, so the quoted fallback goes.
func StripReplyFallback(st *stanzabuf.Stanza, body string) string {
	if body == "" {
		return body
	}
	if fbs, err := fallback.Parse(st.Reader()); err == nil {
		if stripped, err := reply.Strip(body, fbs); err == nil {
			return stripped
		}
	}
	return body
}

// ErrIgnored marks stanzas that are valid but not bridged (yet).
var ErrIgnored = errors.New("xmppclient: not bridged")

type messageFields struct {
	XMLName xml.Name           `xml:"message"`
	ID      string             `xml:"id,attr"`
	From    jid.JID            `xml:"from,attr"`
	To      jid.JID            `xml:"to,attr"`
	Type    stanza.MessageType `xml:"type,attr"`
	Bodies  []struct {
		Lang string `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
		Text string `xml:",chardata"`
	} `xml:"body"`
	Delay *struct {
		Stamp time.Time `xml:"stamp,attr"`
	} `xml:"urn:xmpp:delay delay"`
}

// ParseMessage classifies one message stanza received by account. It is
// pure so that the carbon and id rules can be tested without a server.
func ParseMessage(st *stanzabuf.Stanza, account jid.JID) (*Message, error) {
	account = account.Bare()
	inner := st
	in := &Message{}
	var carbonDelay time.Time
	c, err := carbons.Carbon{}, carbons.ErrNotCarbon
	if st.HasChild(carbons.NS, "sent") || st.HasChild(carbons.NS, "received") {
		c, err = carbons.Parse(st.Reader(), account)
	}
	switch {
	case err == nil:
		in.Carbon, in.FromMe = true, c.Sent
		inner, err = stanzabuf.Read(c.Inner())
		if err != nil {
			return nil, fmt.Errorf("failed to read carbon: %w", err)
		}
		carbonDelay = c.Delay.Time
	case errors.Is(err, carbons.ErrNotCarbon):
	default:
		// Forged or malformed carbons are dropped, never bridged.
		return nil, err
	}
	return fillIncoming(inner, account, in, carbonDelay)
}

// ParseArchived classifies msg, a result of our own archive with the
// archive's id and stamp.
func ParseArchived(msg *stanzabuf.Stanza, archiveID string, stamp time.Time, account jid.JID) (*Message, error) {
	in := &Message{Archived: true, StanzaID: archiveID}
	return fillIncoming(msg, account.Bare(), in, stamp)
}

// fillIncoming reads an (unwrapped) message into in. defaultTime is the
// time of the wrapper (carbon or archive), used when the message has none.
func fillIncoming(inner *stanzabuf.Stanza, account jid.JID, in *Message, defaultTime time.Time) (*Message, error) {
	in.Raw = inner

	// Neither reads an OMEMO element (its key for every device): it is
	// read once, when decrypted.
	var f messageFields
	if err := xml.NewTokenDecoder(inner.ReaderWithout(omemoElements...)).Decode(&f); err != nil {
		return nil, fmt.Errorf("failed to decode message: %w", err)
	}
	ids, err := sid.Extract(inner.ReaderWithout(omemoElements...))
	if err != nil {
		return nil, err
	}
	// The optional extensions below are ignored when malformed, so that a
	// broken chat state cannot cost the user the message text.
	sig := ParseSignals(inner)
	in.ChatState, in.Markable, in.Markers = sig.ChatState, sig.Markable, sig.Markers
	in.Refs = ParseRefs(inner)
	in.Type = f.Type
	switch f.Type {
	case stanza.ChatMessage, stanza.NormalMessage, "":
	default:
		return nil, fmt.Errorf("%w: %s message", ErrIgnored, f.Type)
	}

	switch {
	case in.Archived:
		// Our archive holds what we sent (from one of our resources) and
		// what we received.
		if f.From.Bare().Equal(account) {
			in.FromMe, in.Peer = true, f.To.Bare()
		} else {
			in.Peer = f.From.Bare()
		}
	case in.FromMe:
		in.Peer = f.To.Bare()
	case in.Carbon:
		in.Peer = f.From.Bare()
	case f.From.Equal(jid.JID{}):
		// mellium blanks a from of our own bare JID; nothing but carbons
		// should come from there.
		return nil, fmt.Errorf("%w: message without sender", ErrIgnored)
	case f.From.Bare().Equal(account):
		// Sent by another of our clients to our own account.
		in.Peer, in.FromMe = account, true
	default:
		in.Peer = f.From.Bare()
	}
	if in.Peer.Equal(jid.JID{}) {
		return nil, fmt.Errorf("%w: no peer", ErrIgnored)
	}

	for _, b := range f.Bodies {
		if in.Body == "" || b.Lang == "" {
			in.Body = b.Text
		}
		if b.Lang == "" {
			break
		}
	}
	if in.ReplyTo != nil {
		in.Body = StripReplyFallback(inner, in.Body)
	}
	in.OriginID = ids.OriginID
	if in.StanzaID == "" {
		in.StanzaID, _ = ids.StanzaIDBy(account)
	}
	in.XMPPID = f.ID
	if in.XMPPID == "" {
		in.XMPPID = in.OriginID
	}
	if in.XMPPID == "" && in.StanzaID != "" {
		in.XMPPID = "sid:" + in.StanzaID
	}
	if in.XMPPID == "" {
		// Last resort for clients that send no id: the same stanza seen
		// twice (offline delivery, then a carbon) still hashes the same.
		h := sha256.New()
		enc := xml.NewEncoder(h)
		r := inner.Reader()
		for t, err := r.Token(); err == nil; t, err = r.Token() {
			_ = enc.EncodeToken(t)
		}
		_ = enc.Flush()
		in.XMPPID = "hash:" + hex.EncodeToString(h.Sum(nil))[:32]
	}
	switch {
	case f.Delay != nil && !f.Delay.Stamp.IsZero():
		in.Timestamp = f.Delay.Stamp
	case !defaultTime.IsZero():
		in.Timestamp = defaultTime
	}
	return in, nil
}

// Nick is the XEP-0172 nick the message carries, "" if none.
func (m *Message) Nick() string {
	if m.Raw == nil || !m.Raw.HasChild(nick.NS, "nick") {
		return ""
	}
	return nick.FromStanza(m.Raw.Reader())
}

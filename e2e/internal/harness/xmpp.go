package harness

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/roster"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/omemo"
)

// Peer is a plain XMPP client for tests, written on mellium independently of the bridge's own
// connection code: STARTTLS trusting only the test server's self-signed certificate for the
// name "localhost", SCRAM, resource binding, and a log of received messages.
type Peer struct {
	JID     jid.JID // full JID after binding
	Session *xmpp.Session

	served chan error

	mu        sync.Mutex
	changed   chan struct{}
	received  []ReceivedMessage
	presences []ReceivedPresence
}

// ReceivedPresence is a presence stanza the peer received.
type ReceivedPresence struct {
	From string
	// Type is "" for available.
	Type string
	// Show and Status are the presence's <show/> and <status/> texts.
	Show, Status string
}

// ReceivedMessage is a message stanza the peer received.
type ReceivedMessage struct {
	From, To string
	ID       string
	Type     string
	Body     string
	// Carbon is set for XEP-0280 carbon copies (the body is then the forwarded one's).
	Carbon bool
	// At is when the peer read the stanza (for latency figures).
	At time.Time
	// CarbonSent is set for copies of messages another client of the account sent.
	CarbonSent bool

	// Extensions of a direct (non-carbon) message: XEP-0308 correction target, XEP-0424
	// retraction target, XEP-0461 reply target, XEP-0444 reactions.
	Replace     string
	Retract     string
	ReplyTo     string
	ReplyID     string
	ReactionsTo string
	Reactions   []string
	OriginID    string
	// OOB is the URL of a XEP-0066 <x xmlns='jabber:x:oob'/> (shared files).
	OOB string
	// InviteFrom and DeclineFrom are the from of a XEP-0045 mediated invitation or decline
	// (muc#user <invite/>, <decline/>) that a room forwarded; "" when there is none.
	InviteFrom, DeclineFrom string
	Invite, Decline         bool

	// ChatState is the local name of a XEP-0085 chat state element ("composing", "paused", ...);
	// Displayed is the id of a XEP-0333 <displayed/> marker.
	ChatState, Displayed string

	// OMEMO is the message's <encrypted/> element (either namespace), also of a carbon's
	// forwarded message, so that tests can replay or tamper with real peers' ciphertexts.
	OMEMO *omemo.Encrypted
}

type forwardedMsg struct {
	From string `xml:"from,attr"`
	To   string `xml:"to,attr"`
	ID   string `xml:"id,attr"`
	Type string `xml:"type,attr"`
	Body string `xml:"body"`
	omemoElems
}

// omemoElems catches an <encrypted/> element of either OMEMO version.
type omemoElems struct {
	V2  *omemo.Encrypted `xml:"urn:xmpp:omemo:2 encrypted"`
	V03 *omemo.Encrypted `xml:"eu.siacs.conversations.axolotl encrypted"`
}

func (o omemoElems) encrypted() *omemo.Encrypted {
	if o.V2 != nil {
		return o.V2
	}
	return o.V03
}

type inMsg struct {
	XMLName  xml.Name `xml:"message"`
	From     string   `xml:"from,attr"`
	To       string   `xml:"to,attr"`
	ID       string   `xml:"id,attr"`
	Type     string   `xml:"type,attr"`
	Body     string   `xml:"body"`
	Sent     *carbon  `xml:"urn:xmpp:carbons:2 sent"`
	Received *carbon  `xml:"urn:xmpp:carbons:2 received"`
	Replace  *idAttr  `xml:"urn:xmpp:message-correct:0 replace"`
	Retract  *idAttr  `xml:"urn:xmpp:message-retract:1 retract"`
	Origin   *idAttr  `xml:"urn:xmpp:sid:0 origin-id"`
	OOB      *struct {
		URL string `xml:"url"`
	} `xml:"jabber:x:oob x"`
	Reply *struct {
		To string `xml:"to,attr"`
		ID string `xml:"id,attr"`
	} `xml:"urn:xmpp:reply:0 reply"`
	Reactions *struct {
		ID        string   `xml:"id,attr"`
		Reactions []string `xml:"reaction"`
	} `xml:"urn:xmpp:reactions:0 reactions"`
	Displayed *idAttr   `xml:"urn:xmpp:chat-markers:0 displayed"`
	Composing *struct{} `xml:"http://jabber.org/protocol/chatstates composing"`
	Paused    *struct{} `xml:"http://jabber.org/protocol/chatstates paused"`
	Active    *struct{} `xml:"http://jabber.org/protocol/chatstates active"`
	MUCUser   *struct {
		Invite *struct {
			From string `xml:"from,attr"`
		} `xml:"invite"`
		Decline *struct {
			From string `xml:"from,attr"`
		} `xml:"decline"`
	} `xml:"http://jabber.org/protocol/muc#user x"`
	omemoElems
}

type idAttr struct {
	ID string `xml:"id,attr"`
}

type carbon struct {
	Forwarded struct {
		Message forwardedMsg `xml:"jabber:client message"`
	} `xml:"urn:xmpp:forward:0 forwarded"`
}

// steadyConn ignores the deadlines mellium sets when a call's context ends: its goroutine can
// run after the call returned, and a past deadline then broke a later write or read of the
// established stream ("write tcp …: i/o timeout" from a peer in TestMediaLarge). The bridge
// guards itself the same way (xmpp/sm.Conn, xmpp/conn). Read deadlines (mellium's close
// deadline) pass through.
type steadyConn struct{ net.Conn }

func (steadyConn) SetDeadline(time.Time) error      { return nil }
func (steadyConn) SetWriteDeadline(time.Time) error { return nil }

// DialPeer logs in to the server at addr (host:port, STARTTLS) as account (a full JID gets that
// resource), trusting the PEM certificate in certFile for the name "localhost" only, and sends
// initial presence so that messages to the bare JID and carbons reach it.
func DialPeer(ctx context.Context, addr, certFile string, account jid.JID, password string) (*Peer, error) {
	pem, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", certFile)
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tlsConfig := &tls.Config{ServerName: "localhost", RootCAs: pool, MinVersion: tls.VersionTLS12}
	// A negotiation that outlives ctx ends with the connection (mellium gets a context that
	// never ends: see steadyConn).
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	session, err := xmpp.NewClientSession(context.WithoutCancel(ctx), account, steadyConn{conn},
		xmpp.StartTLS(tlsConfig),
		// No -PLUS: ejabberd 23.01 offers it on TLS 1.3 but refuses tls-exporter, the only
		// binding mellium uses there (the bridge itself handles that: xmpp/conn).
		xmpp.SASL("", password, sasl.ScramSha256, sasl.ScramSha1),
		xmpp.BindResource(),
	)
	if !stop() {
		err = errors.Join(err, fmt.Errorf("stream negotiation: %w", ctx.Err()))
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("failed to log in as %s: %w", account, err)
	}
	p := &Peer{JID: session.LocalAddr(), Session: session, served: make(chan error, 1), changed: make(chan struct{})}
	go func() { p.served <- session.Serve(xmpp.HandlerFunc(p.handle)) }()
	if err := session.Send(ctx, stanza.Presence{}.Wrap(nil)); err != nil {
		p.Close()
		return nil, fmt.Errorf("failed to send presence: %w", err)
	}
	return p, nil
}

func (p *Peer) handle(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	if start.Name.Local == "presence" {
		var pr ReceivedPresence
		for _, a := range start.Attr {
			switch a.Name.Local {
			case "from":
				pr.From = a.Value
			case "type":
				pr.Type = a.Value
			}
		}
		var children struct {
			Show   string `xml:"show"`
			Status string `xml:"status"`
		}
		if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), t)).Decode(&children); err == nil {
			pr.Show, pr.Status = children.Show, children.Status
		}
		p.mu.Lock()
		p.presences = append(p.presences, pr)
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
		return nil
	}
	if start.Name.Local != "message" {
		// IQs get an error reply from mellium when unhandled.
		return nil
	}
	r, err := parseMessage(xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), t)))
	if err != nil {
		return nil
	}
	r.At = time.Now()
	p.mu.Lock()
	p.received = append(p.received, r)
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	return nil
}

// ParseMessage reads a message stanza given as XML text (in the jabber:client namespace) as a
// peer reads what it receives (At is left zero): for stanzas a benchmark took out of the
// bridge's stream (e2e/internal/xmpptap) instead of a peer.
func ParseMessage(raw []byte) (ReceivedMessage, error) {
	d := xml.NewDecoder(bytes.NewReader(raw))
	d.DefaultSpace = "jabber:client"
	r, err := parseMessage(d)
	if err != nil {
		return ReceivedMessage{}, fmt.Errorf("failed to parse a message stanza: %w", err)
	}
	return r, nil
}

func parseMessage(d *xml.Decoder) (ReceivedMessage, error) {
	var m inMsg
	if err := d.Decode(&m); err != nil {
		return ReceivedMessage{}, err
	}
	r := ReceivedMessage{From: m.From, To: m.To, ID: m.ID, Type: m.Type, Body: m.Body, OMEMO: m.encrypted()}
	if m.Replace != nil {
		r.Replace = m.Replace.ID
	}
	if m.Retract != nil {
		r.Retract = m.Retract.ID
	}
	if m.Origin != nil {
		r.OriginID = m.Origin.ID
	}
	if m.OOB != nil {
		r.OOB = m.OOB.URL
	}
	if m.Displayed != nil {
		r.Displayed = m.Displayed.ID
	}
	switch {
	case m.Composing != nil:
		r.ChatState = "composing"
	case m.Paused != nil:
		r.ChatState = "paused"
	case m.Active != nil:
		r.ChatState = "active"
	}
	if m.MUCUser != nil && m.MUCUser.Invite != nil {
		r.Invite, r.InviteFrom = true, m.MUCUser.Invite.From
	}
	if m.MUCUser != nil && m.MUCUser.Decline != nil {
		r.Decline, r.DeclineFrom = true, m.MUCUser.Decline.From
	}
	if m.Reply != nil {
		r.ReplyTo, r.ReplyID = m.Reply.To, m.Reply.ID
	}
	if m.Reactions != nil {
		r.ReactionsTo, r.Reactions = m.Reactions.ID, m.Reactions.Reactions
		if r.Reactions == nil {
			r.Reactions = []string{}
		}
	}
	switch {
	case m.Sent != nil:
		f := m.Sent.Forwarded.Message
		r = ReceivedMessage{From: f.From, To: f.To, ID: f.ID, Type: f.Type, Body: f.Body, Carbon: true, CarbonSent: true, OMEMO: f.encrypted()}
	case m.Received != nil:
		f := m.Received.Forwarded.Message
		r = ReceivedMessage{From: f.From, To: f.To, ID: f.ID, Type: f.Type, Body: f.Body, Carbon: true, OMEMO: f.encrypted()}
	}
	return r, nil
}

// Close ends the stream and the connection.
func (p *Peer) Close() {
	_ = p.Session.Close()
	_ = p.Session.Conn().Close()
}

// Received returns the messages received so far.
func (p *Peer) Received() []ReceivedMessage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.received)
}

// Cursor is the number of messages received so far.
func (p *Peer) Cursor() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.received)
}

// WaitMessage waits for the first message at index >= from that matches.
func (p *Peer) WaitMessage(ctx context.Context, from int, match func(ReceivedMessage) bool) (ReceivedMessage, int, error) {
	for {
		p.mu.Lock()
		for i := from; i < len(p.received); i++ {
			if match(p.received[i]) {
				m := p.received[i]
				p.mu.Unlock()
				return m, i + 1, nil
			}
		}
		from = max(from, len(p.received))
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return ReceivedMessage{}, from, fmt.Errorf("%s received no matching message: %w", p.JID, ctx.Err())
		case err := <-p.served:
			p.served <- err
			return ReceivedMessage{}, from, fmt.Errorf("%s: stream ended: %v", p.JID, err)
		case <-changed:
		}
	}
}

// Serving reports whether the peer's stream is still served, and why it
// ended if not: a peer whose stream ended receives nothing more, so a test
// counting its messages would otherwise blame their sender.
func (p *Peer) Serving() (bool, error) {
	select {
	case err := <-p.served:
		p.served <- err
		return false, err
	default:
		return true, nil
	}
}

// PresenceCursor is the number of presences received so far.
func (p *Peer) PresenceCursor() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.presences)
}

// WaitPresence waits for the first presence at index >= from that matches.
func (p *Peer) WaitPresence(ctx context.Context, from int, match func(ReceivedPresence) bool) (ReceivedPresence, error) {
	for {
		p.mu.Lock()
		for i := from; i < len(p.presences); i++ {
			if match(p.presences[i]) {
				pr := p.presences[i]
				p.mu.Unlock()
				return pr, nil
			}
		}
		from = max(from, len(p.presences))
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return ReceivedPresence{}, fmt.Errorf("%s received no matching presence: %w", p.JID, ctx.Err())
		case <-changed:
		}
	}
}

type outMsg struct {
	stanza.Message
	Body     string    `xml:"body,omitempty"`
	OriginID *originID `xml:"urn:xmpp:sid:0 origin-id,omitempty"`
}

type originID struct {
	ID string `xml:"id,attr"`
}

// SendChat sends a type=chat message with the given id attribute and, unless originID is empty, a
// XEP-0359 origin-id. Sending the same arguments twice sends the same stanza twice.
func (p *Peer) SendChat(ctx context.Context, to jid.JID, stanzaID, origin, body string) error {
	m := outMsg{Message: stanza.Message{To: to, ID: stanzaID, Type: stanza.ChatMessage}, Body: body}
	if origin != "" {
		m.OriginID = &originID{ID: origin}
	}
	if err := p.Session.Encode(ctx, m); err != nil {
		return fmt.Errorf("%s failed to send to %s: %w", p.JID, to, err)
	}
	return nil
}

// SendRaw sends one stanza given as XML text (in the jabber:client namespace).
func (p *Peer) SendRaw(ctx context.Context, raw string) error {
	if err := p.Session.Send(ctx, xml.NewDecoder(strings.NewReader(raw))); err != nil {
		return fmt.Errorf("%s failed to send a stanza: %w", p.JID, err)
	}
	return nil
}

// SetRosterName adds contact to the account's roster with the given name.
func (p *Peer) SetRosterName(ctx context.Context, contact jid.JID, name string) error {
	if err := roster.Set(ctx, p.Session, roster.Item{JID: contact, Name: name}); err != nil {
		return fmt.Errorf("failed to set roster item %s: %w", contact, err)
	}
	return nil
}

// RosterNames fetches the roster as bare JID -> name.
func (p *Peer) RosterNames(ctx context.Context) (map[string]string, error) {
	iter := roster.Fetch(ctx, p.Session)
	defer iter.Close()
	out := map[string]string{}
	for iter.Next() {
		item := iter.Item()
		out[item.JID.Bare().String()] = item.Name
	}
	if err := iter.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

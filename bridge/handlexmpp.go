package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/roster"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/puppet"
	"github.com/mxomemo/xmpp-bridge/xmpp/carbons"
	"github.com/mxomemo/xmpp-bridge/xmpp/sid"
)

// maxStanzaTokens bounds how much of one message stanza is buffered.
const maxStanzaTokens = 20000

// handler routes stanzas read by mellium's Serve loop. It runs inside that
// loop, so nothing here may send on the session. Messages and presences are
// taken whole (mellium's mux would split them by child element); IQs go
// through the mux, which answers unknown ones with service-unavailable.
func (c *Client) handler() xmpp.Handler {
	incoming := c.incoming
	iqs := mux.New(stanza.NSClient,
		roster.Handle(roster.Handler{Push: c.handleRosterPush}),
		ping.Handle(),
	)
	return xmpp.HandlerFunc(func(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		switch {
		case start.Name.Local == "message" && stanza.Is(start.Name, stanza.NSClient):
			toks, err := readTokens(xmlstream.MultiReader(xmlstream.Token(*start), t))
			if err != nil {
				c.login.Log.Warn().Err(err).Msg("Dropping unreadable message stanza")
				return nil
			}
			incoming <- toks
			return nil
		case start.Name.Local == "presence" && stanza.Is(start.Name, stanza.NSClient):
			return c.handlePresence(t, start)
		}
		return iqs.HandleXMPP(t, start)
	})
}

func readTokens(r xml.TokenReader) ([]xml.Token, error) {
	var toks []xml.Token
	for {
		tok, err := r.Token()
		if tok != nil {
			if len(toks) >= maxStanzaTokens {
				return nil, errors.New("stanza too large")
			}
			toks = append(toks, xml.CopyToken(tok))
		}
		if errors.Is(err, io.EOF) {
			return toks, nil
		} else if err != nil {
			return nil, err
		}
	}
}

// replay reads a buffered token slice again.
type replay struct {
	toks []xml.Token
	i    int
}

func (r *replay) Token() (xml.Token, error) {
	if r.i >= len(r.toks) {
		return nil, io.EOF
	}
	r.i++
	return r.toks[r.i-1], nil
}

func replayTokens(toks []xml.Token) xml.TokenReader { return &replay{toks: toks} }

// processIncoming handles buffered message stanzas one at a time, in order.
func (c *Client) processIncoming(ctx context.Context, incoming <-chan []xml.Token) {
	for {
		select {
		case <-ctx.Done():
			return
		case toks := <-incoming:
			c.handleMessage(ctx, toks)
		}
	}
}

// incomingMessage is a 1:1 message as the bridge sees it, after carbons have
// been unwrapped and checked.
type incomingMessage struct {
	// Peer is the contact's bare JID: the chat the message belongs to.
	Peer jid.JID
	// FromMe is set for messages our account sent from another client.
	FromMe bool
	// Carbon is set when the message arrived as a carbon copy.
	Carbon bool

	Type      stanza.MessageType
	XMPPID    string
	OriginID  string
	StanzaID  string
	Body      string
	Timestamp time.Time

	// Raw is the (unwrapped) message, for payloads handled later in the
	// pipeline such as OMEMO's <encrypted/>.
	Raw []xml.Token
}

// errIgnored marks stanzas that are valid but not bridged (yet).
var errIgnored = errors.New("not bridged")

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

// parseIncoming classifies one message stanza received by account. It is
// pure so that the carbon and id rules can be tested without a server.
func parseIncoming(toks []xml.Token, account jid.JID) (*incomingMessage, error) {
	account = account.Bare()
	inner := toks
	in := &incomingMessage{}
	var carbonDelay time.Time
	c, err := carbons.Parse(replayTokens(toks), account)
	switch {
	case err == nil:
		in.Carbon, in.FromMe = true, c.Sent
		inner, err = readTokens(c.Inner())
		if err != nil {
			return nil, fmt.Errorf("failed to read carbon: %w", err)
		}
		carbonDelay = c.Delay.Time
	case errors.Is(err, carbons.ErrNotCarbon):
	default:
		// Forged or malformed carbons are dropped, never bridged.
		return nil, err
	}
	in.Raw = inner

	var f messageFields
	if err := xml.NewTokenDecoder(replayTokens(inner)).Decode(&f); err != nil {
		return nil, fmt.Errorf("failed to decode message: %w", err)
	}
	ids, err := sid.Extract(replayTokens(inner))
	if err != nil {
		return nil, err
	}
	in.Type = f.Type
	switch f.Type {
	case stanza.ChatMessage, stanza.NormalMessage, "":
	default:
		return nil, fmt.Errorf("%w: %s message", errIgnored, f.Type)
	}

	switch {
	case in.FromMe:
		in.Peer = f.To.Bare()
	case in.Carbon:
		in.Peer = f.From.Bare()
	case f.From.Equal(jid.JID{}):
		// mellium blanks a from of our own bare JID; nothing but carbons
		// should come from there.
		return nil, fmt.Errorf("%w: message without sender", errIgnored)
	case f.From.Bare().Equal(account):
		// Sent by another of our clients to our own account.
		in.Peer, in.FromMe = account, true
	default:
		in.Peer = f.From.Bare()
	}
	if in.Peer.Equal(jid.JID{}) {
		return nil, fmt.Errorf("%w: no peer", errIgnored)
	}

	for _, b := range f.Bodies {
		if in.Body == "" || b.Lang == "" {
			in.Body = b.Text
		}
		if b.Lang == "" {
			break
		}
	}
	in.OriginID = ids.OriginID
	in.StanzaID, _ = ids.StanzaIDBy(account)
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
		for _, t := range inner {
			_ = enc.EncodeToken(t)
		}
		_ = enc.Flush()
		in.XMPPID = "hash:" + hex.EncodeToString(h.Sum(nil))[:32]
	}
	switch {
	case f.Delay != nil && !f.Delay.Stamp.IsZero():
		in.Timestamp = f.Delay.Stamp
	case !carbonDelay.IsZero():
		in.Timestamp = carbonDelay
	}
	return in, nil
}

// handleMessage is the XMPP -> Matrix path for one message stanza:
// classify, decrypt, queue for bridgev2.
func (c *Client) handleMessage(ctx context.Context, toks []xml.Token) {
	log := zerolog.Ctx(ctx)
	in, err := parseIncoming(toks, c.account)
	switch {
	case errors.Is(err, carbons.ErrForged):
		log.Warn().Err(err).Msg("Dropping forged carbon")
		return
	case errors.Is(err, errIgnored):
		log.Trace().Err(err).Msg("Ignoring message")
		return
	case err != nil:
		log.Warn().Err(err).Msg("Dropping malformed message")
		return
	}
	if err := c.decryptIncoming(ctx, in); err != nil {
		log.Warn().Err(err).Str("xmpp_id", in.XMPPID).Msg("Failed to decrypt message")
		return
	}
	if in.Body == "" {
		return
	}
	c.queueIncoming(in)
}

// decryptIncoming is where OMEMO decryption plugs in: it replaces in.Body
// with the plaintext of an <encrypted/> payload in in.Raw. Plaintext
// messages pass through unchanged.
func (c *Client) decryptIncoming(ctx context.Context, in *incomingMessage) error {
	return nil
}

func (c *Client) queueIncoming(in *incomingMessage) {
	sender := bridgev2.EventSender{Sender: puppet.UserID(in.Peer)}
	senderJID := in.Peer
	if in.FromMe {
		sender = bridgev2.EventSender{IsFromMe: true, SenderLogin: c.login.ID, Sender: puppet.UserID(c.account)}
		senderJID = c.account
	}
	msgID := MakeMessageID(in.Peer, senderJID, in.XMPPID)
	c.login.QueueRemoteEvent(&simplevent.Message[*incomingMessage]{
		EventMeta: simplevent.EventMeta{
			Type:         bridgev2.RemoteEventMessage,
			PortalKey:    portal.DMKey(in.Peer, c.login.ID),
			Sender:       sender,
			CreatePortal: true,
			Timestamp:    in.Timestamp,
			LogContext: func(lc zerolog.Context) zerolog.Context {
				return lc.Str("xmpp_id", in.XMPPID).Bool("carbon", in.Carbon)
			},
		},
		Data:               in,
		ID:                 msgID,
		ConvertMessageFunc: c.convertIncoming,
	})
}

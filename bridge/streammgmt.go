package bridge

import (
	"bytes"
	"context"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/metrics"
	"github.com/mxomemo/xmpp-bridge/xmpp/sm"
	"github.com/mxomemo/xmpp-bridge/xmpp/xmltok"
)

// XEP-0198 stream management of a login's connection (xmpp/sm).
//
// What counts as handled: an inbound stanza is acknowledged once the
// session's handler has put it into the login's queue (c.incoming), or
// finished with it (IQs, presences): the stream manager counts a stanza when
// the decoder has consumed it, and answers the server's <r/> only when Serve
// hands the <r/> itself to the handler, after every stanza before it. The
// queue is in memory: a stanza in it is lost with the process, but so is
// the stream, which cannot be resumed then; the server's archive and the
// catch-up after the next connect (delivery.go) are the backstop, as they
// were without stream management. Acknowledging only after bridgev2 stored
// a message would hold the server's queue for as long as Matrix is slow and
// gain nothing over the archive.
//
// Outbound: a stanza the session wrote without error is kept until the
// server acknowledges it. A resumed stream writes the kept ones again, as
// the same bytes (the same id and origin-id), and only those the server
// says it did not get. A stream that cannot be resumed hands them back:
// messages are looked for in the account's (or the room's) archive and sent
// again under the same id only if they are not there (resendUnacked), before
// the login is ready, so that the Matrix → XMPP intake's next messages come
// after them.

// newStreamManager is a login's stream management (one per Client, kept
// across its connections; the login probe's goes to the Client with the
// session it hands over).
func newStreamManager() *sm.Manager { return sm.New(sm.Options{}) }

// smSession starts stream management's work for a served session and
// reports how it began; the returned function stops it.
func (c *Client) smSession(ctx context.Context, s *xmpp.Session) (stop func()) {
	log := zerolog.Ctx(ctx)
	r := c.sm.LastResult()
	switch {
	case r.Resumed:
		log.Info().Int("resent", r.Resent).Uint32("h_in", r.InH).Uint32("h_out", r.ServerH).Msg("XMPP stream resumed")
		c.main.Metrics.XMPPStream(metrics.StreamResumed)
	case r.ResumeFailed:
		log.Warn().Str("condition", r.Condition).Msg("XMPP stream resumption refused; bound a new session")
		c.main.Metrics.XMPPStream(metrics.StreamResumeFailed)
	default:
		c.main.Metrics.XMPPStream(metrics.StreamBound)
	}
	if !r.Offered {
		log.Debug().Msg("XMPP server offers no stream management (XEP-0198)")
	}
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		if err := c.sm.Run(ctx, s); err != nil && ctx.Err() == nil {
			log.Debug().Err(err).Msg("Stream management stopped")
		}
	}()
	return func() {
		cancel()
		for _, err := range c.sm.AckErrors() {
			log.Warn().Err(err).Msg("XMPP server's stream management acknowledgement did not match")
		}
	}
}

// resendUnacked sends again the messages of a stream that could not be
// resumed which its server never acknowledged, unless the archive shows
// that they reached it.
func (c *Client) resendUnacked(ctx context.Context, s *xmpp.Session) {
	lost := c.sm.TakeLost()
	if len(lost) == 0 {
		return
	}
	log := zerolog.Ctx(ctx)
	var resent, found, skipped int
	for _, st := range lost {
		switch unackedKind(st) {
		case unackedSkip:
			skipped++
			continue
		case unackedArchived:
			in, err := c.unackedInArchive(ctx, s, st)
			if err != nil {
				log.Warn().Err(err).Str("xmpp_id", st.ID).Msg("Could not look for an unacknowledged message in the archive; sending it again under the same id")
			} else if in {
				found++
				continue
			}
		}
		toks, err := xmltok.Decode(st.Raw)
		if err == nil {
			sendCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err = s.Send(sendCtx, xmltok.Replay(toks))
			cancel()
		}
		if err != nil {
			log.Err(err).Str("xmpp_id", st.ID).Msg("Failed to send an unacknowledged message again")
			continue
		}
		resent++
	}
	log.Info().Int("unacknowledged", len(lost)).Int("in_archive", found).Int("resent", resent).Int("skipped", skipped).
		Msg("Checked the messages the lost XMPP stream had not acknowledged")
}

type unackedClass int

const (
	unackedSkip     unackedClass = iota // not a message, or only a chat state or marker
	unackedArchived                     // a message the server archives: look first
	unackedResend                       // a message the archive does not keep (retraction, reaction): send again
)

func unackedKind(st sm.Stanza) unackedClass {
	if st.Name != "message" || st.Type == "error" {
		return unackedSkip
	}
	if bytes.Contains(st.Raw, []byte("<body")) || bytes.Contains(st.Raw, []byte("<encrypted")) {
		return unackedArchived
	}
	if bytes.Contains(st.Raw, []byte("http://jabber.org/protocol/chatstates")) || bytes.Contains(st.Raw, []byte("urn:xmpp:chat-markers:0")) {
		// Chat states and read markers are not retried elsewhere either.
		return unackedSkip
	}
	return unackedResend
}

func (c *Client) unackedInArchive(ctx context.Context, s *xmpp.Session, st sm.Stanza) (bool, error) {
	to, err := jid.Parse(st.To)
	if err != nil || st.ID == "" {
		return false, err
	}
	if st.Type == "groupchat" {
		return c.roomArchiveHas(ctx, s, to.Bare(), st.ID, st.Written)
	}
	return c.ownArchiveHas(ctx, s, to, st.ID, st.Written)
}

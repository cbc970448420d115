package xmppclient

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	xconn "github.com/mxomemo/xmpp-bridge/xmpp/conn"
	"github.com/mxomemo/xmpp-bridge/xmpp/sm"
	"github.com/mxomemo/xmpp-bridge/xmpp/xmltok"
)

// XEP-0198 stream management of a login's connection (xmpp/sm), one
// manager per Conn, kept across its connections.
//
// What counts as handled: an inbound stanza is acknowledged once the
// session's handler (the Router) has put it into the login's Stream, or
// finished with it (IQs, presences): the manager counts a stanza when the
// decoder has consumed it, and answers the server's <r/> only when Serve
// hands the <r/> itself to the handler, after every stanza before it. The
// Stream is in memory: a stanza in it is lost with the process, but so is
// the XMPP stream, which cannot be resumed then; the server's archive and
// the catch-up after the next connect are the backstop, as they were
// without stream management. Acknowledging only once the connector stored
// a message would hold the server's queue for as long as Matrix is slow
// and gain nothing over the archive.
//
// Outbound: a stanza the session wrote without error is kept until the
// server acknowledges it. A resumed stream writes the kept ones again, as
// the same bytes (the same id and origin-id), and only those the server
// says it did not get. A stream that cannot be resumed hands them back:
// messages are looked for in the account's (or the room's) archive and
// sent again under the same id only if they are not there (resendUnacked),
// after the session's Setup and before Connected, so that the Matrix →
// XMPP intake's next messages come after them.

// StreamHow is how a served session began.
type StreamHow int

const (
	// StreamBound: a fresh bind (stream management enabled if offered).
	StreamBound StreamHow = iota + 1
	// StreamResumed: the previous stream was resumed (XEP-0198).
	StreamResumed
	// StreamResumeFailed: the server refused to resume it; a fresh bind
	// followed.
	StreamResumeFailed
)

// StreamStart says how a session began (ConnHooks.StreamStarted).
type StreamStart struct {
	How StreamHow
	// Offered: the server offers stream management.
	Offered bool
	// Resumed: Resent of our stanzas the server had not acknowledged
	// were written again; InH is our count of the server's stanzas (sent
	// in <resume/>), ServerH its count of ours (its <resumed/>).
	Resent       int
	InH, ServerH uint32
	// Condition is the server's reason for refusing a resumption.
	Condition string
}

// UnackedCheck says what became of the stanzas a stream that could not be
// resumed had written without their acknowledgement
// (ConnHooks.UnackedChecked).
type UnackedCheck struct {
	// Unacked stanzas were handed back; InArchive of them were found in
	// the archive (not sent again), Resent were sent again under their
	// id, Skipped are not worth sending again (IQs, presences, chat
	// states, markers), Failed could not be sent.
	Unacked, InArchive, Resent, Skipped, Failed int
}

// ArchiveLookup reports whether the archive holds a message we sent with
// id since since: the account's archive for a chat with to, the room
// to's archive when room is set. It runs during the session's setup, on s.
type ArchiveLookup func(ctx context.Context, s *xmpp.Session, to jid.JID, room bool, id string, since time.Time) (bool, error)

func newStreamManager() *sm.Manager { return sm.New(sm.Options{}) }

// LoginSession is a session dialed outside the connection loop (the login
// flow's, to check the credentials) with the stream management it was
// negotiated with; Conn.HandOff continues both.
type LoginSession struct {
	*xmpp.Session
	sm *sm.Manager
}

// DialLogin dials and logs in with cfg, with stream management.
func DialLogin(ctx context.Context, cfg xconn.Config) (*LoginSession, error) {
	m := newStreamManager()
	cfg.SM = m
	s, err := xconn.Dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &LoginSession{Session: s, sm: m}, nil
}

// manager is the stream management of the loop's sessions.
func (c *Conn) manager() *sm.Manager {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sm
}

// startStream reports how s began and asks the server for
// acknowledgements while it is served; the returned function stops that.
func (c *Conn) startStream(ctx context.Context, s *xmpp.Session, m *sm.Manager) (stop func()) {
	log := zerolog.Ctx(ctx)
	r := m.LastResult()
	st := StreamStart{How: StreamBound, Offered: r.Offered}
	switch {
	case r.Resumed:
		st.How, st.Resent, st.InH, st.ServerH = StreamResumed, r.Resent, r.InH, r.ServerH
	case r.ResumeFailed:
		st.How, st.Condition = StreamResumeFailed, r.Condition
	}
	c.hooks.StreamStarted(ctx, st)
	ctx, cancel := context.WithCancel(ctx)
	// A goroutine only while stanzas wait for an acknowledgement: an idle
	// login holds none for it.
	m.Start(ctx, s)
	return func() {
		cancel()
		for _, err := range m.AckErrors() {
			log.Warn().Err(err).Msg("XMPP server's stream management acknowledgement did not match")
		}
	}
}

// resendUnacked sends again the messages of a stream that could not be
// resumed which its server never acknowledged, unless the archive shows
// that they reached it.
func (c *Conn) resendUnacked(ctx context.Context, s *xmpp.Session, m *sm.Manager) {
	lost := m.TakeLost()
	if len(lost) == 0 {
		return
	}
	u := UnackedCheck{Unacked: len(lost)}
	for _, st := range lost {
		switch unackedKind(st) {
		case unackedSkip:
			u.Skipped++
			continue
		case unackedArchived:
			in, err := c.unackedInArchive(ctx, s, st)
			if err != nil {
				zerolog.Ctx(ctx).Warn().Err(err).Str("xmpp_id", st.ID).
					Msg("Could not look for an unacknowledged message in the archive; sending it again under the same id")
			} else if in {
				u.InArchive++
				continue
			}
		}
		if err := resendRaw(ctx, s, st.Raw); err != nil {
			zerolog.Ctx(ctx).Err(err).Str("xmpp_id", st.ID).Msg("Failed to send an unacknowledged message again")
			u.Failed++
			continue
		}
		u.Resent++
	}
	c.hooks.UnackedChecked(ctx, u)
}

func resendRaw(ctx context.Context, s *xmpp.Session, raw []byte) error {
	toks, err := xmltok.Decode(raw)
	if err != nil {
		return fmt.Errorf("failed to read the kept stanza: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.Send(ctx, xmltok.Replay(toks)); err != nil {
		return fmt.Errorf("%w: %w", ErrSend, err)
	}
	return nil
}

type unackedClass int

const (
	unackedSkip     unackedClass = iota // not a message, or only a chat state or marker
	unackedArchived                     // a message the server archives: look first
	unackedResend                       // a message the archive does not keep (retraction, reaction): send again
)

// unackedKind sorts a kept stanza. Its bytes are as we wrote them (our
// own builders), so a look for the elements' names is enough.
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

// unackedInArchive asks the ArchiveLookup for st; without one, or for a
// stanza without an id or address, the answer is "not there" (sent again:
// a duplicate is better than a loss).
func (c *Conn) unackedInArchive(ctx context.Context, s *xmpp.Session, st sm.Stanza) (bool, error) {
	if c.cfg.InArchive == nil {
		return false, nil
	}
	to, err := jid.Parse(st.To)
	if err != nil || st.ID == "" {
		return false, err
	}
	if st.Type == "groupchat" {
		return c.cfg.InArchive(ctx, s, to.Bare(), true, st.ID, st.Written)
	}
	return c.cfg.InArchive(ctx, s, to, false, st.ID, st.Written)
}

// ErrNotAcked: the stream a message was written on ended before the
// server acknowledged it; stream management resends it (resumption) or
// hands it to the archive check (resendUnacked).
var ErrNotAcked = sm.ErrStreamEnded

// AckWaiter marks every stanza written so far on the login's stream and
// returns what waits until the server has acknowledged them (XEP-0198):
// a written stanza the server had not read yet dies with the process.
// nil without stream management (nothing better is known then). The
// waiter returns ErrNotAcked when the stream ended first. Taking the mark
// does not block; the wait is meant for another goroutine than the one
// that wrote (the session's reader must go on for the <a/> to arrive).
func (c *Conn) AckWaiter() func(context.Context) error {
	m := c.manager()
	mk, ok := m.Written()
	if !ok {
		return nil
	}
	return func(ctx context.Context) error { return m.WaitAcked(ctx, mk) }
}

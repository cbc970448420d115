package xmppclient

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stanza"

	xconn "github.com/mxomemo/xmpp-bridge/xmpp/conn"
	"github.com/mxomemo/xmpp-bridge/xmpp/sm"
)

// ConnHooks is what a Conn tells its owner: Connecting, ConnectFailed, Ended
// and Lost from the connection goroutine; Setup and Connected from a
// goroutine of their own while the connection goroutine reads the stream,
// and always before Ended.
type ConnHooks interface {
	// Connecting: a dial starts.
	Connecting()
	// ConnectFailed: a dial failed. When permanent (the server refused
	// the login) the loop ends; otherwise it redials in retryIn.
	ConnectFailed(err error, permanent bool, retryIn time.Duration)
	// Setup prepares a fresh session (Serve already runs on it) before it
	// counts as connected; an error drops it and redials.
	Setup(ctx context.Context, s *xmpp.Session) error
	// Connected: s is set up.
	Connected(ctx context.Context, s *xmpp.Session)
	// Ended: the session ended (for whatever reason, also after a failed
	// Setup); called before Lost.
	Ended()
	// Lost: the connection was lost (err); the loop redials in retryIn.
	Lost(err error, retryIn time.Duration)
	// StreamStarted: how a session began (a fresh bind, or XEP-0198
	// resumed or refused), before its Setup.
	StreamStarted(ctx context.Context, st StreamStart)
	// UnackedChecked: what was done, after Setup, with the stanzas a
	// stream that could not be resumed had left unacknowledged.
	UnackedChecked(ctx context.Context, u UnackedCheck)
}

// ConnConfig is how a Conn dials and serves.
type ConnConfig struct {
	// Settings are read again for every dial.
	Settings func() xconn.Config
	// MaxReconnectDelay caps the backoff between dials.
	MaxReconnectDelay time.Duration
	// PingInterval is how often the server is pinged (XEP-0199); 0: never.
	PingInterval time.Duration
	// Handler is the stanza handler of one session's Serve loop (Router).
	Handler func(ctx context.Context) xmpp.Handler
	// InArchive looks for an unacknowledged message of a stream that could
	// not be resumed (streammgmt.go); nil: every such message is sent again.
	InArchive ArchiveLookup
}

// Conn keeps one login connected: it dials, serves and redials with
// backoff until its context ends. Run is the connection goroutine; it also
// reads the session's stream (Serve).
type Conn struct {
	account jid.JID
	cfg     ConnConfig
	hooks   ConnHooks

	mu      sync.Mutex
	session *xmpp.Session
	handoff *xmpp.Session
	sm      *sm.Manager // XEP-0198 across the connections (streammgmt.go)
}

// NewConn is the connection of account.
func NewConn(account jid.JID, cfg ConnConfig, hooks ConnHooks) *Conn {
	return &Conn{account: account, cfg: cfg, hooks: hooks, sm: newStreamManager()}
}

// Session is the current session, nil while disconnected (and on a nil
// Conn: a client that never connects).
func (c *Conn) Session() *xmpp.Session {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session
}

// HandOff gives the loop a session that is already logged in (the login
// flow's), used instead of the first dial, with its stream management.
func (c *Conn) HandOff(ls *LoginSession) {
	c.mu.Lock()
	c.handoff = ls.Session
	if ls.sm != nil {
		c.sm = ls.sm
	}
	c.mu.Unlock()
}

// Run keeps the login connected until ctx is cancelled or the server
// refuses the login.
func (c *Conn) Run(ctx context.Context) {
	log := zerolog.Ctx(ctx)
	bo := Backoff{Min: 2 * time.Second, Max: c.cfg.MaxReconnectDelay}
	for {
		c.mu.Lock()
		s := c.handoff
		c.handoff = nil
		c.mu.Unlock()
		if s == nil {
			c.hooks.Connecting()
			var (
				err  error
				info xconn.Info
			)
			settings := c.cfg.Settings()
			settings.SM = c.manager()
			s, info, err = xconn.DialInfo(ctx, settings)
			if info.ChannelBindingRefused != "" {
				// Logged in without channel binding after the server refused
				// it (xmpp/conn/channelbinding.go says why that is safe enough).
				log.Warn().Str("channel_binding", info.ChannelBindingRefused).Str("mechanism", info.Mechanism).
					Msg("XMPP server refused SASL channel binding; logged in without it")
			}
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if xconn.IsPermanent(err) {
					log.Warn().Err(err).Msg("XMPP login refused, not retrying")
					c.hooks.ConnectFailed(err, true, 0)
					return
				}
				delay := bo.Next()
				log.Warn().Err(err).Dur("retry_in", delay).Msg("Failed to connect to XMPP server")
				c.hooks.ConnectFailed(err, false, delay)
				if !Sleep(ctx, delay) {
					return
				}
				continue
			}
		}
		started := time.Now()
		err := c.serve(ctx, s)
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > time.Minute {
			bo.Reset()
		}
		delay := bo.Next()
		log.Warn().Err(err).Dur("retry_in", delay).Msg("XMPP connection lost")
		c.hooks.Lost(err, delay)
		if !Sleep(ctx, delay) {
			return
		}
	}
}

// serve runs one connected session until it ends or ctx is cancelled.
// Serve (the stream's reader) runs on the connection goroutine itself;
// Setup and Connected run on a goroutine of their own while it does (their
// IQs need the reader), and the pings and the close at ctx's end are timers:
// a connected idle login holds this goroutine (and stream management's
// acknowledgement loop, startStream).
func (c *Conn) serve(ctx context.Context, s *xmpp.Session) error {
	// Kept as long as the session: a hook, not a With (LogField).
	log := LogField(*zerolog.Ctx(ctx), "resource", s.LocalAddr().Resourcepart())
	ctx = log.WithContext(ctx)
	c.mu.Lock()
	c.session = s
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.session = nil
		c.mu.Unlock()
		c.hooks.Ended()
	}()

	m := c.manager()
	served := make(chan struct{}) // closed when Serve returned
	var (
		endMu  sync.Mutex
		endErr error // why the session was closed from our side
	)
	end := func(err error) {
		endMu.Lock()
		first := endErr == nil
		if first {
			endErr = err
		}
		endMu.Unlock()
		if first {
			closeSession(s, served)
		}
	}

	handler := m.Handler(c.cfg.Handler(ctx))
	defer c.startStream(ctx, s, m)()

	setupDone := make(chan struct{})
	go func() {
		defer close(setupDone)
		if err := c.hooks.Setup(ctx, s); err != nil {
			log.Err(err).Msg("Session setup failed")
			end(err)
			return
		}
		c.resendUnacked(ctx, s, m)
		log.Info().Msg("Connected to XMPP server")
		c.hooks.Connected(ctx, s)
	}()
	stopCancel := context.AfterFunc(ctx, func() { end(ctx.Err()) })
	defer stopCancel()
	if iv := c.cfg.PingInterval; iv > 0 {
		p := &pinger{iv: iv, ping: func() {
			pingCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := ping.Send(pingCtx, s, c.account.Domain())
			cancel()
			select {
			case <-served: // the session ended meanwhile
				return
			default:
			}
			var stanzaErr stanza.Error
			if err != nil && !errors.As(err, &stanzaErr) && ctx.Err() == nil {
				log.Warn().Err(err).Msg("Server ping failed, dropping connection")
				end(fmt.Errorf("ping failed: %w", err))
			}
		}}
		p.start()
		defer p.stop()
	}

	err := s.Serve(handler)
	close(served)
	<-setupDone
	endMu.Lock()
	defer endMu.Unlock()
	switch {
	case endErr != nil:
		return endErr
	case err == nil:
		return errors.New("stream closed by server")
	default:
		return err
	}
}

// pinger calls ping every iv on a timer (no goroutine between pings) until
// stopped.
type pinger struct {
	iv   time.Duration
	ping func()

	mu      sync.Mutex
	t       *time.Timer
	stopped bool
}

func (p *pinger) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.t = time.AfterFunc(p.iv, p.fire)
}

func (p *pinger) fire() {
	p.ping()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopped {
		p.t.Reset(p.iv)
	}
}

func (p *pinger) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	p.t.Stop()
}

// Probe dials and logs in once with cfg: the login flow's check of the
// credentials. The session is then handed to the login's Conn (HandOff) or
// ended with CloseProbe. Its error is xconn's classified one as it is:
// the login's reply to the user reads the class from the start of its text.
func Probe(ctx context.Context, cfg xconn.Config) (*LoginSession, error) {
	return DialLogin(ctx, cfg)
}

// CloseProbe ends a session of Probe that was not handed off.
func CloseProbe(s *LoginSession) {
	_ = s.Close()
	_ = s.Conn().Close()
}

// closeSession ends the stream politely and then the connection, so that a
// dead peer cannot keep Serve waiting.
func closeSession(s *xmpp.Session, served <-chan struct{}) {
	_ = s.Close()
	select {
	case <-served:
	case <-time.After(2 * time.Second):
	}
	_ = s.Conn().Close()
}

// Sleep waits d or until ctx ends; it reports whether d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/status"
	"mellium.im/xmpp"
	mcarbons "mellium.im/xmpp/carbons"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/puppet"
	xconn "github.com/mxomemo/xmpp-bridge/xmpp/conn"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// Client is one login's XMPP client; it implements bridgev2.NetworkAPI.
//
// A connection goroutine (run) dials, serves and redials with backoff until
// Disconnect. Incoming message stanzas are copied out of mellium's Serve
// loop into a queue that one processing goroutine drains, because handlers
// running inside Serve must not send anything on the session, and OMEMO
// decryption, the catch-up and Matrix sends all do.
type Client struct {
	// rejoining is set while the saved rooms are not yet joined again on
	// the current session (mucjoin.go): Matrix messages for them wait.
	rejoining atomic.Bool

	main    *Connector
	login   *bridgev2.UserLogin
	account jid.JID // bare; the zero JID if the metadata is broken
	// password is the unsealed XMPP password (credentials.go); credErr
	// says why there is none. Neither changes after LoadUserLogin.
	password string
	credErr  error

	mu      sync.Mutex
	session *xmpp.Session
	cancel  context.CancelFunc
	done    chan struct{}
	handoff *xmpp.Session

	metaMu sync.Mutex // guards LastArchiveID and Rooms in the login metadata
	mam    mamQueries

	omemo omemoState // the login's OMEMO device (omemo.go)

	badCredentials atomic.Bool
	incoming       chan inItem
	loopCtx        context.Context // of the incoming queue, set by Connect
	delivery       deliveryState   // archive cursor and catch-up order (delivery.go)
	roster         *xmppclient.Roster
	avatars        avatarState       // contacts' avatars looked at (avatar.go)
	nicks          nickState         // contacts' own names looked up (contactname.go)
	mucs           *xmppclient.Rooms // the group chats of the current session
	presence       presenceState     // presence both ways (presence.go)

	// ready is set once a session is fully set up (ready.go).
	ready readyGate
}

var (
	_ bridgev2.NetworkAPI                    = (*Client)(nil)
	_ bridgev2.IdentifierResolvingNetworkAPI = (*Client)(nil)
	_ bridgev2.ContactListingNetworkAPI      = (*Client)(nil)
	_ bridgev2.NetworkAPIWithUserID          = (*Client)(nil)
)

func newClient(xc *Connector, login *bridgev2.UserLogin) *Client {
	c := &Client{main: xc, login: login, roster: xmppclient.NewRoster(), mucs: xmppclient.NewRooms()}
	c.delivery.wm = newWatermark()
	c.rejoining.Store(true)
	if meta, ok := login.Metadata.(*UserLoginMetadata); ok {
		if j, err := xconn.ParseJID(meta.JID); err == nil {
			c.account = j
		}
	}
	return c
}

// backgroundCtx is the context of work the login starts on its own
// (connection loop, ghost and avatar updates): bridgev2's BackgroundCtx,
// cancelled when the bridge stops, with the login's logger.
func (c *Client) backgroundCtx() context.Context {
	return c.login.Log.WithContext(c.main.backgroundCtx())
}

// backgroundCtx is bridgev2's BackgroundCtx; unit tests that build a
// Connector without a started bridge get a context that is never cancelled.
func (xc *Connector) backgroundCtx() context.Context {
	if xc.Bridge != nil && xc.Bridge.BackgroundCtx != nil {
		return xc.Bridge.BackgroundCtx
	}
	return context.TODO()
}

func (c *Client) meta() *UserLoginMetadata {
	meta, _ := c.login.Metadata.(*UserLoginMetadata)
	if meta == nil {
		return &UserLoginMetadata{}
	}
	return meta
}

// connConfig builds the dial settings from the login metadata and config.
func (c *Client) connConfig() xconn.Config {
	meta := c.meta()
	hosts := append([]string(nil), c.main.Config.InsecureTLSHosts...)
	if loginInsecureHostOK(meta.InsecureTLSHost, c.account, meta.Host) {
		hosts = append(hosts, meta.InsecureTLSHost)
	}
	return xconn.Config{
		JID:              c.account,
		Password:         c.password,
		Host:             meta.Host,
		Port:             meta.Port,
		DirectTLS:        meta.DirectTLS,
		InsecureTLSHosts: hosts,
		AllowPlain:       c.main.Config.AllowPlainAuth,
	}
}

// Connect implements bridgev2.NetworkAPI. It starts the connection goroutine
// and returns at once; progress is reported through bridge states.
func (c *Client) Connect(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancel != nil {
		return
	}
	log := c.login.Log.With().Str("component", "xmpp").Logger()
	if c.account.Equal(jid.JID{}) {
		log.Error().Msg("Login metadata has no valid JID")
		c.badCredentials.Store(true)
		c.sendState(status.BridgeState{StateEvent: status.StateBadCredentials, Error: "xmpp-no-jid", Message: "The login has no valid XMPP address, please log in again"})
		return
	}
	if c.credErr != nil {
		log.Error().Err(c.credErr).Msg("Not connecting: the stored password cannot be read")
		c.badCredentials.Store(true)
		c.sendState(credentialState(c.credErr))
		return
	}
	loopCtx, cancel := context.WithCancel(log.WithContext(c.main.backgroundCtx()))
	c.cancel = cancel
	c.done = make(chan struct{})
	c.incoming = make(chan inItem, 256)
	c.loopCtx = loopCtx
	go c.processIncoming(loopCtx, c.incoming)
	go c.runOMEMOWorker(loopCtx)
	go c.runPresencePusher(loopCtx)
	go c.runOwnPresence(loopCtx)
	go c.run(loopCtx, c.done)
}

// Disconnect implements bridgev2.NetworkAPI.
func (c *Client) Disconnect() {
	c.mu.Lock()
	cancel, done := c.cancel, c.done
	c.cancel, c.done = nil, nil
	c.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		c.login.Log.Warn().Msg("Timed out waiting for the XMPP connection to close")
	}
}

// IsLoggedIn implements bridgev2.NetworkAPI: the stored credentials are not
// known to be bad (a login stays logged in while it is reconnecting).
func (c *Client) IsLoggedIn() bool {
	return !c.account.Equal(jid.JID{}) && !c.badCredentials.Load()
}

// LogoutRemote implements bridgev2.NetworkAPI. Password logins have no
// remote session to revoke, so this only disconnects.
func (c *Client) LogoutRemote(ctx context.Context) {
	c.omemoUnannounce(ctx)
	c.Disconnect()
	c.omemoDelete(ctx)
	c.main.Metrics.RemoveLogin(string(c.login.ID))
}

// IsThisUser implements bridgev2.NetworkAPI.
func (c *Client) IsThisUser(ctx context.Context, userID networkid.UserID) bool {
	return userID == puppet.UserID(c.account)
}

// GetUserID implements bridgev2.NetworkAPIWithUserID.
func (c *Client) GetUserID() networkid.UserID {
	return puppet.UserID(c.account)
}

func (c *Client) currentSession() *xmpp.Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session
}

// run keeps the login connected until ctx is cancelled.
func (c *Client) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	log := zerolog.Ctx(ctx)
	bo := xmppclient.Backoff{Min: 2 * time.Second, Max: c.main.Config.maxReconnectDelay()}
	for {
		c.mu.Lock()
		s := c.handoff
		c.handoff = nil
		c.mu.Unlock()
		if s == nil {
			c.sendState(status.BridgeState{StateEvent: status.StateConnecting})
			var (
				err  error
				info xconn.Info
			)
			s, info, err = xconn.DialInfo(ctx, c.connConfig())
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
					c.badCredentials.Store(true)
					c.sendState(status.BridgeState{StateEvent: status.StateBadCredentials, Error: stateErrorCode(err), Message: userMessage(err, c.account)})
					return
				}
				delay := bo.Next()
				log.Warn().Err(err).Dur("retry_in", delay).Msg("Failed to connect to XMPP server")
				c.sendState(status.BridgeState{StateEvent: status.StateTransientDisconnect, Error: stateErrorCode(err), Message: userMessage(err, c.account)})
				c.main.Metrics.XMPPReconnect()
				if !sleep(ctx, delay) {
					return
				}
				continue
			}
		}
		c.badCredentials.Store(false)
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
		c.sendState(status.BridgeState{StateEvent: status.StateTransientDisconnect, Error: "xmpp-connection-lost", Message: "Connection to the XMPP server was lost, reconnecting"})
		c.main.Metrics.XMPPReconnect()
		if !sleep(ctx, delay) {
			return
		}
	}
}

// serve runs one connected session until it ends or ctx is cancelled.
func (c *Client) serve(ctx context.Context, s *xmpp.Session) error {
	log := zerolog.Ctx(ctx).With().Str("resource", s.LocalAddr().Resourcepart()).Logger()
	ctx = log.WithContext(ctx)
	c.mu.Lock()
	c.session = s
	c.mu.Unlock()
	defer func() {
		c.rejoining.Store(true)
		c.ready.set(false)
		c.mu.Lock()
		c.session = nil
		c.mu.Unlock()
		c.mucs.Disconnected()
	}()

	served := make(chan error, 1)
	go func() { served <- s.Serve(c.handler(ctx)) }()

	if err := c.afterConnect(ctx, s); err != nil {
		log.Err(err).Msg("Session setup failed")
		closeSession(s, served)
		return err
	}
	log.Info().Msg("Connected to XMPP server")
	c.ready.set(true)
	c.sendState(c.connectedState())
	go c.rejoinRooms(ctx, s)

	var tick <-chan time.Time
	if iv := c.main.Config.pingInterval(); iv > 0 {
		t := time.NewTicker(iv)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case err := <-served:
			if err == nil {
				err = errors.New("stream closed by server")
			}
			return err
		case <-ctx.Done():
			closeSession(s, served)
			return ctx.Err()
		case <-tick:
			pingCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := ping.Send(pingCtx, s, c.account.Domain())
			cancel()
			var stanzaErr stanza.Error
			if err != nil && !errors.As(err, &stanzaErr) {
				log.Warn().Err(err).Msg("Server ping failed, dropping connection")
				closeSession(s, served)
				return fmt.Errorf("ping failed: %w", err)
			}
		}
	}
}

// afterConnect prepares a fresh session: carbons on, roster loaded, then
// initial presence (which makes the server deliver offline messages).
func (c *Client) afterConnect(ctx context.Context, s *xmpp.Session) error {
	// The catch-up's start marker goes first in the queue, so that
	// everything live from now on waits for its results (delivery.go);
	// the archive is asked once OMEMO is up, so that its results can be
	// decrypted.
	c.mu.Lock()
	loopCtx := c.loopCtx
	c.mu.Unlock()
	runCatchUp := c.startCatchUp(loopCtx)
	holdBeforePresence(ctx)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := mcarbons.Enable(ctx, s); err != nil {
		// Not fatal: without carbons only messages from other clients are missed.
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to enable carbons")
	}
	if err := c.fetchRoster(ctx, s); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to fetch roster")
	}
	// OMEMO first: the presence's caps (+notify) make the server push
	// device lists, which need the OMEMO client.
	c.omemoConnect(ctx, s)
	c.presenceConnected(s)
	if err := c.sendOwnPresence(ctx, s, true); err != nil {
		return fmt.Errorf("failed to send initial presence: %w", err)
	}
	runCatchUp(s)
	return nil
}

// closeSession ends the stream politely and then the connection, so that a
// dead peer cannot keep Serve waiting.
func closeSession(s *xmpp.Session, served <-chan error) {
	_ = s.Close()
	select {
	case <-served:
	case <-time.After(2 * time.Second):
	}
	_ = s.Conn().Close()
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// sendState reports a login state to bridgev2 and to the metrics.
func (c *Client) sendState(st status.BridgeState) {
	c.login.BridgeState.Send(st)
	c.main.Metrics.ObserveBridgeState(string(c.login.ID), st.StateEvent)
}

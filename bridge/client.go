package bridge

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/status"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/puppet"
	xconn "github.com/mxomemo/xmpp-bridge/xmpp/conn"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// Client is one login's bridgev2.NetworkAPI over its XMPP client (package
// xmppclient).
//
// Its connection loop is xmppclient.Conn (dial, serve, redial with backoff
// until Disconnect). The router (handlexmpp.go) puts every message out of
// mellium's Serve loop onto the login's ordered stream (xmppclient.Stream),
// which one goroutine drains (processIncoming), because handlers running
// inside Serve must not send anything on the session, and OMEMO
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

	// conn is the connection loop (xmppclient.Conn): the current session,
	// reconnects with backoff, pings.
	conn *xmppclient.Conn

	// roomScans are the room archive scans of the Matrix intake's replay
	// (mucarchivescan.go).
	roomScans roomScanCache

	mu     sync.Mutex // guards cancel, done and loopCtx
	cancel context.CancelFunc
	done   chan struct{}

	metaMu sync.Mutex // guards LastArchiveID, Rooms and Invites in the login metadata, and cursorPending
	// cursorPending: a moved archive cursor waits to be written (cursorsave.go).
	cursorPending bool
	mam           xmppclient.Queries

	omemo   xmppclient.OMEMO // the login's OMEMO device, its locks and work queue
	omemoDB omemoDB          // its store and inbox sweeps (omemo.go)
	// presenceRunner pushes contacts' presences while some wait (presence.go).
	presenceRunner xmppclient.LazyWorker

	badCredentials atomic.Bool
	stream         *xmppclient.Stream // the login's ordered stream of events (router -> handleEvent)
	loopCtx        context.Context    // of the incoming queue, set by Connect
	delivery       deliveryState      // archive cursor and catch-up order (delivery.go)
	roster         *xmppclient.Roster
	avatars        avatarState        // contacts' avatars looked at (avatar.go)
	nicks          nickState          // contacts' own names looked up (contactname.go)
	mucs           *xmppclient.Rooms  // the group chats of the current session
	roomJoins      roomJoins          // one join per room at a time (mucjoin.go)
	uploads        xmppclient.Uploads // the XEP-0363 service of the current session
	presence       presenceState      // presence both ways (presence.go)

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
	c.delivery.wm = xmppclient.NewCursor()
	c.omemo.SetHooks(c.omemoHooks())
	c.rejoining.Store(true)
	if meta, ok := login.Metadata.(*UserLoginMetadata); ok {
		if j, err := xconn.ParseJID(meta.JID); err == nil {
			c.account = j
		}
	}
	c.conn = xmppclient.NewConn(c.account, xmppclient.ConnConfig{
		Settings:          c.connConfig,
		MaxReconnectDelay: xc.Config.maxReconnectDelay(),
		PingInterval:      xc.Config.pingInterval(),
		Handler:           func(ctx context.Context) xmpp.Handler { return c.router().Handler(ctx) },
		InArchive:         c.unackedInArchive,
	}, connHooks{c})
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
	// Kept as long as the connection loop: a hook, not a With (LogField).
	log := xmppclient.LogField(c.login.Log, "component", "xmpp")
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
	c.stream = xmppclient.NewStream(256)
	c.loopCtx = loopCtx
	c.stream.Start(loopCtx, c.handleEvent)
	c.startPresencePusher(loopCtx)
	c.followOwnPresence(loopCtx)
	done := c.done
	go func() {
		defer close(done)
		c.omemo.Start(loopCtx) // tasks queued while disconnected run now
		c.conn.Run(loopCtx)
	}()
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
	c.flushCursor()
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
	return c.conn.Session()
}

// The connection loop is xmppclient.Conn's; these are its hooks (run on
// its goroutine): bridge states, metrics and the session's setup.
type connHooks struct{ c *Client }

var _ xmppclient.ConnHooks = connHooks{}

func (h connHooks) Connecting() {
	h.c.sendState(status.BridgeState{StateEvent: status.StateConnecting})
}

func (h connHooks) ConnectFailed(err error, permanent bool, _ time.Duration) {
	c := h.c
	if permanent {
		c.badCredentials.Store(true)
		c.sendState(status.BridgeState{StateEvent: status.StateBadCredentials, Error: stateErrorCode(err), Message: userMessage(err, c.account)})
		return
	}
	c.sendState(status.BridgeState{StateEvent: status.StateTransientDisconnect, Error: stateErrorCode(err), Message: userMessage(err, c.account)})
	c.main.Metrics.XMPPReconnect()
}

func (h connHooks) Setup(ctx context.Context, s *xmpp.Session) error {
	h.c.badCredentials.Store(false)
	return h.c.afterConnect(ctx, s)
}

func (h connHooks) Connected(ctx context.Context, s *xmpp.Session) {
	c := h.c
	c.ready.set(true)
	c.sendState(c.connectedState())
	c.main.heapReleaser().connected()
	go c.rejoinRooms(ctx, s)
}

func (h connHooks) Ended() {
	c := h.c
	c.rejoining.Store(true)
	c.ready.set(false)
	c.mucs.Disconnected()
}

func (h connHooks) Lost(error, time.Duration) {
	h.c.sendState(status.BridgeState{StateEvent: status.StateTransientDisconnect, Error: "xmpp-connection-lost", Message: "Connection to the XMPP server was lost, reconnecting"})
	h.c.main.Metrics.XMPPReconnect()
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
	runCatchUp := c.startAccountCatchUp(loopCtx)
	holdBeforePresence(ctx)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := xmppclient.EnableCarbons(ctx, s); err != nil {
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

// sendState reports a login state to bridgev2 and to the metrics.
func (c *Client) sendState(st status.BridgeState) {
	c.login.BridgeState.Send(st)
	c.main.Metrics.ObserveBridgeState(string(c.login.ID), st.StateEvent)
}

package bridge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/event"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/puppet"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// Presence both ways (docs/contacts.md#presence).
//
// XMPP -> Matrix: every available or unavailable presence of a roster
// contact updates that contact's aggregate (xmppclient.Presences: the
// highest-priority resource wins), and the aggregate, when it differs from
// what the ghost shows, waits in a per-login map of the latest presence per
// contact. One goroutine per login sets the ghosts' Matrix presence from it
// (PUT /presence/{ghost}/status as the ghost, through the appservice's
// user_id masquerading), at most network.presence.max_per_second, so the
// burst of presences the server sends at login becomes one update per
// contact, paced. After a reconnect, contacts whose presence the new session
// did not bring are set offline.
//
// Matrix -> XMPP: the account's presence follows the Matrix user's (read
// through the bot by the process's one poller, presencepoll.go:
// appservices get no presence EDUs without MSC2409, which Dendrite lacks)
// or a fixed show.

// presenceSettle is how long after the initial presence the server has to
// send the contacts' presences before the ones it did not send count as
// offline.
const presenceSettle = 15 * time.Second

// presenceState is a login's presence bookkeeping.
type presenceState struct {
	mu       sync.Mutex
	contacts *xmppclient.Presences
	pending  map[string]xmppclient.Presence
	order    []string
	pushed   map[string]xmppclient.Presence
	// kick starts the pusher (startPresencePusher) when a presence is
	// queued; it must not take mu. pushCtx is the current connection's.
	kick    func()
	pushCtx context.Context

	// ownShow and ownStatus are what the account should show; sentOn is
	// the session they were last sent on.
	ownShow   xmppclient.Show
	ownStatus string
	sentOn    *xmpp.Session
	sentShow  xmppclient.Show
	sentText  string
}

func (ps *presenceState) initLocked() {
	if ps.contacts == nil {
		ps.contacts = xmppclient.NewPresences()
		ps.pending = map[string]xmppclient.Presence{}
		ps.pushed = map[string]xmppclient.Presence{}
	}
}

// update applies a contact's presence and queues its aggregate for the
// ghost when it changed.
func (ps *presenceState) update(from jid.JID, p xmppclient.Presence) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.initLocked()
	ps.queueLocked(from.Bare().String(), ps.contacts.Update(from, p))
}

func (ps *presenceState) queueLocked(key string, agg xmppclient.Presence) {
	agg.Priority = 0 // not shown on Matrix
	if old, ok := ps.pushed[key]; ok && old == agg {
		delete(ps.pending, key)
		return
	}
	if _, ok := ps.pending[key]; !ok {
		ps.order = append(ps.order, key)
	}
	ps.pending[key] = agg
	if ps.kick != nil {
		ps.kick()
	}
}

// next takes the oldest queued contact and its latest presence.
func (ps *presenceState) next() (string, xmppclient.Presence, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for len(ps.order) > 0 {
		key := ps.order[0]
		ps.order = ps.order[1:]
		if p, ok := ps.pending[key]; ok {
			delete(ps.pending, key)
			return key, p, true
		}
	}
	return "", xmppclient.Presence{}, false
}

func (ps *presenceState) done(key string, p xmppclient.Presence) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.pushed[key] = p
}

// reset starts a session: every contact's presence comes again.
func (ps *presenceState) reset() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.initLocked()
	ps.contacts.Reset()
}

// sweep sets the ghosts of contacts the session brought no presence of
// offline.
func (ps *presenceState) sweep() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.initLocked()
	for key, p := range ps.pushed {
		if p.Show == xmppclient.ShowOffline {
			continue
		}
		j, err := jid.Parse(key)
		if err != nil {
			continue
		}
		if _, ok := ps.contacts.Get(j); !ok {
			ps.queueLocked(key, xmppclient.Presence{Show: xmppclient.ShowOffline})
		}
	}
}

// setKick sets what starts the pusher and the context it pushes in (a new
// connection's), and starts it for what is queued.
func (ps *presenceState) setKick(ctx context.Context, kick func()) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.initLocked()
	ps.kick, ps.pushCtx = kick, ctx
	if len(ps.pending) > 0 {
		kick()
	}
}

// pushContext is the context to push in, nil when the connection ended.
func (ps *presenceState) pushContext() context.Context {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.pushCtx == nil || ps.pushCtx.Err() != nil {
		return nil
	}
	return ps.pushCtx
}

func (ps *presenceState) hasPending() bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return len(ps.pending) > 0
}

// handleContactPresence takes an available or unavailable presence read in
// the Serve loop: roster contacts only (a stranger's directed presence
// makes no ghost), never the account's own resources.
func (c *Client) handleContactPresence(from jid.JID, p xmppclient.Presence) {
	if !c.main.Config.Presence.Contacts || from.Bare().Equal(c.account.Bare()) {
		return
	}
	if _, ok := c.roster.Get(from); !ok {
		return
	}
	c.presence.update(from, p)
}

// startPresencePusher makes queued contact presences reach the ghosts,
// paced, on a goroutine that runs only while presences wait
// (xmppclient.LazyWorker): an idle login holds none for it.
func (c *Client) startPresencePusher(ctx context.Context) {
	if !c.main.Config.Presence.Contacts {
		return
	}
	interval := c.main.Config.Presence.pushInterval()
	// The worker reads the connection's context each time: one still
	// finishing for a previous connection carries on for the new one.
	drain := func() {
		for {
			ctx := c.presence.pushContext()
			if ctx == nil {
				return
			}
			key, p, ok := c.presence.next()
			if !ok {
				return
			}
			if err := c.pushGhostPresence(ctx, key, p); err != nil {
				zerolog.Ctx(ctx).Warn().Err(err).Str("contact", key).Msg("Failed to set a ghost's presence")
			} else {
				c.presence.done(key, p)
			}
			if !xmppclient.Sleep(ctx, interval) {
				return
			}
		}
	}
	c.presence.setKick(ctx, func() {
		c.presenceRunner.Kick(drain, func() bool { return c.presence.pushContext() != nil && c.presence.hasPending() })
	})
}

// matrixPresence is the Matrix presence and status message for an XMPP
// presence: Matrix has online, unavailable and offline only, so away, xa
// and dnd are unavailable, dnd saying so when the contact set no text.
func matrixPresence(p xmppclient.Presence) (event.Presence, string) {
	switch p.Show {
	case xmppclient.ShowOffline:
		return event.PresenceOffline, p.Status
	case xmppclient.ShowAway, xmppclient.ShowXA:
		return event.PresenceUnavailable, p.Status
	case xmppclient.ShowDND:
		if p.Status == "" {
			return event.PresenceUnavailable, "Do not disturb"
		}
		return event.PresenceUnavailable, p.Status
	}
	return event.PresenceOnline, p.Status
}

// errNoAppserviceIntent: ghost presence needs the appservice's intents.
var errNoAppserviceIntent = errors.New("bridge: the ghost's intent is not an appservice intent")

// pushGhostPresence sets the Matrix presence of contact's ghost. The
// status message is always sent, so that a cleared XMPP status clears it.
func (c *Client) pushGhostPresence(ctx context.Context, contact string, p xmppclient.Presence) error {
	j, err := jid.Parse(contact)
	if err != nil {
		return fmt.Errorf("failed to parse contact: %w", err)
	}
	ghost, err := c.main.Bridge.GetGhostByID(ctx, puppet.UserID(j))
	if err != nil {
		return fmt.Errorf("failed to get the ghost: %w", err)
	}
	as, ok := ghost.Intent.(*matrix.ASIntent)
	if !ok {
		return errNoAppserviceIntent
	}
	if err := as.Matrix.EnsureRegistered(ctx); err != nil {
		return fmt.Errorf("failed to register the ghost: %w", err)
	}
	presence, status := matrixPresence(p)
	body := map[string]any{"presence": presence, "status_msg": status}
	u := as.Matrix.BuildClientURL("v3", "presence", as.Matrix.UserID, "status")
	if _, err := as.Matrix.MakeRequest(ctx, http.MethodPut, u, body, nil); err != nil {
		return fmt.Errorf("failed to set presence %s: %w", presence, err)
	}
	zerolog.Ctx(ctx).Debug().Str("contact", contact).Str("presence", string(presence)).Msg("Set a ghost's presence")
	return nil
}

// presenceConnected runs at every new session, before its initial
// presence.
func (c *Client) presenceConnected(s *xmpp.Session) {
	c.presence.reset()
	time.AfterFunc(presenceSettle, func() {
		if c.currentSession() == s {
			c.presence.sweep()
		}
	})
}

// ownPresence is what the account should show now.
func (c *Client) ownPresence() (xmppclient.Show, string) {
	c.presence.mu.Lock()
	show, status := c.presence.ownShow, c.presence.ownStatus
	c.presence.mu.Unlock()
	if fixed, ok := c.main.Config.Presence.fixedShow(); ok {
		show, status = fixed, c.main.Config.Presence.OwnStatus
	}
	return show, status
}

// sendOwnPresence sends the account's presence on s unless it shows that
// already.
func (c *Client) sendOwnPresence(ctx context.Context, s *xmpp.Session, force bool) error {
	show, status := c.ownPresence()
	c.presence.mu.Lock()
	same := c.presence.sentOn == s && c.presence.sentShow == show && c.presence.sentText == status
	c.presence.mu.Unlock()
	if same && !force {
		return nil
	}
	if err := xmppclient.SendPresence(ctx, s, show, status); err != nil {
		return err
	}
	c.presence.mu.Lock()
	c.presence.sentOn, c.presence.sentShow, c.presence.sentText = s, show, status
	c.presence.mu.Unlock()
	return nil
}

// xmppShow is the account's show for the Matrix user's presence: never
// offline, which would stop the account's messages.
func xmppShow(p event.Presence) xmppclient.Show {
	switch p {
	case event.PresenceUnavailable:
		return xmppclient.ShowAway
	case event.PresenceOffline:
		return xmppclient.ShowXA
	}
	return xmppclient.ShowAvailable
}

// followOwnPresence makes the poller read the Matrix user's presence for
// this login until ctx ends (presencepoll.go); a fixed own presence needs
// none.
func (c *Client) followOwnPresence(ctx context.Context) {
	if p := c.main.presencePoller(); p != nil {
		p.add(ctx, c)
	}
}

// touchOwnPresence: the Matrix user did something in a portal, so their
// presence may have changed; the poller reads it soon.
func (c *Client) touchOwnPresence() {
	c.main.presencePoller().touch(c.login.UserMXID)
}

// setOwnPresence takes the Matrix user's presence the poller read and sends
// it to the account when the session is up and shows something else.
func (c *Client) setOwnPresence(resp *mautrix.RespPresence) {
	status := resp.StatusMsg
	if status == "" {
		status = c.main.Config.Presence.OwnStatus
	}
	c.presence.mu.Lock()
	c.presence.ownShow, c.presence.ownStatus = xmppShow(resp.Presence), status
	c.presence.mu.Unlock()
	s := c.currentSession()
	if s == nil || !c.isReady() {
		return // the session's setup sends it
	}
	show, text := c.ownPresence()
	c.presence.mu.Lock()
	same := c.presence.sentOn == s && c.presence.sentShow == show && c.presence.sentText == text
	c.presence.mu.Unlock()
	c.mu.Lock()
	ctx := c.loopCtx
	c.mu.Unlock()
	if same || ctx == nil || ctx.Err() != nil {
		return
	}
	// Not on the poller's goroutine: a session slow to write must not hold
	// every other user's read.
	go func() {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := c.sendOwnPresence(sctx, s, false); err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to send the account's presence")
		}
	}()
}

// isReady reports whether the session is set up (its initial presence
// sent): until then a new own presence waits for it.
func (c *Client) isReady() bool {
	ready, _ := c.ready.state()
	return ready
}

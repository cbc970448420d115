package bridge

import (
	"container/heap"
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/id"
)

// The Matrix user's presence has to be read (appservices get no presence
// pushed by Dendrite, which lacks MSC2409), but not by every login on a
// timer of its own: one poller per process reads it for every login that
// follows it (network.presence.own: matrix), one request at a time, each
// Matrix user once however many logins they have, every poll_seconds while
// poll_per_second allows, less often beyond (10 000 users at 10/s: every
// ≈ 17 min). An idle process with no due user has no timer armed. What a
// user does in a portal (a message, an edit, a receipt, typing) has their
// presence read at once, so a returning user shows as such whatever the
// cycle.

// presenceTouchGap is the least time between two reads of one user that
// their activity asks for.
const presenceTouchGap = 15 * time.Second

// presencePoller reads the Matrix users' presence for their logins.
type presencePoller struct {
	ctx      context.Context
	interval time.Duration // between two reads of one user
	gap      time.Duration // between two requests of the process
	touchGap time.Duration // presenceTouchGap
	read     func(ctx context.Context, user id.UserID) (*mautrix.RespPresence, error)

	mu     sync.Mutex
	users  map[id.UserID]*polledUser
	due    dueHeap
	timer  *time.Timer
	busy   bool      // a read is in flight; its end arms the timer
	lastAt time.Time // when the last request started
	reads  int       // requests made (tests)
}

// polledUser is one Matrix user and the logins that follow their presence.
type polledUser struct {
	user    id.UserID
	clients []*Client
	due     time.Time
	read    time.Time // last read (zero: never)
	index   int       // in the heap
}

func newPresencePoller(ctx context.Context, cfg *PresenceConfig, read func(context.Context, id.UserID) (*mautrix.RespPresence, error)) *presencePoller {
	return &presencePoller{ctx: ctx, interval: cfg.pollInterval(), gap: cfg.pollGap(), touchGap: presenceTouchGap, read: read, users: map[id.UserID]*polledUser{}}
}

// presencePoller is the process's poller, nil when nothing is polled (a
// fixed own presence, or no appservice bot).
func (xc *Connector) presencePoller() *presencePoller {
	xc.pollerOnce.Do(func() {
		if _, fixed := xc.Config.Presence.fixedShow(); fixed || xc.Bridge == nil {
			return
		}
		bot, ok := xc.Bridge.Bot.(*matrix.ASIntent)
		if !ok {
			return
		}
		ctx := xc.Bridge.Log.With().Str("component", "presence poller").Logger().WithContext(xc.backgroundCtx())
		xc.poller = newPresencePoller(ctx, &xc.Config.Presence, func(ctx context.Context, user id.UserID) (*mautrix.RespPresence, error) {
			return bot.Matrix.GetPresence(ctx, user)
		})
	})
	return xc.poller
}

// add makes c follow its user's presence from now until ctx ends; the
// user's presence is read at once when it was never read (else c gets the
// last one read at the next read).
func (p *presencePoller) add(ctx context.Context, c *Client) {
	user := c.login.UserMXID
	p.mu.Lock()
	u := p.users[user]
	if u == nil {
		u = &polledUser{user: user, due: time.Now()}
		p.users[user] = u
		heap.Push(&p.due, u)
	} else if !u.read.IsZero() {
		// A new session of a followed user: now, within the touch gap.
		p.touchLocked(u)
	}
	u.clients = append(u.clients, c)
	p.armLocked()
	p.mu.Unlock()
	context.AfterFunc(ctx, func() { p.remove(user, c) })
}

func (p *presencePoller) remove(user id.UserID, c *Client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u := p.users[user]
	if u == nil {
		return
	}
	for i, cl := range u.clients {
		if cl == c {
			u.clients = append(u.clients[:i], u.clients[i+1:]...)
			break
		}
	}
	if len(u.clients) == 0 {
		delete(p.users, user)
		if u.index >= 0 {
			heap.Remove(&p.due, u.index)
		}
	}
	p.armLocked()
}

// touch: the user did something in a portal; read their presence soon.
func (p *presencePoller) touch(user id.UserID) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if u := p.users[user]; u != nil {
		p.touchLocked(u)
		p.armLocked()
	}
}

func (p *presencePoller) touchLocked(u *polledUser) {
	now := time.Now()
	if now.Sub(u.read) < p.touchGap || !u.due.After(now) || u.index < 0 {
		return
	}
	u.due = now
	heap.Fix(&p.due, u.index)
}

// armLocked sets the timer for the next due user (no timer without one,
// none while a read is in flight).
func (p *presencePoller) armLocked() {
	if p.busy || p.ctx.Err() != nil {
		return
	}
	if len(p.due) == 0 {
		if p.timer != nil {
			p.timer.Stop()
		}
		return
	}
	at := p.due[0].due
	if next := p.lastAt.Add(p.gap); next.After(at) {
		at = next
	}
	d := time.Until(at)
	if p.timer == nil {
		p.timer = time.AfterFunc(d, p.fire)
	} else {
		p.timer.Reset(d)
	}
}

// fire reads the most overdue user's presence and hands it to their logins.
func (p *presencePoller) fire() {
	p.mu.Lock()
	now := time.Now()
	if p.busy || len(p.due) == 0 || p.due[0].due.After(now) || now.Before(p.lastAt.Add(p.gap)) || p.ctx.Err() != nil {
		p.armLocked() // early (a Reset raced), or nothing due
		p.mu.Unlock()
		return
	}
	u := heap.Pop(&p.due).(*polledUser)
	p.busy, p.lastAt = true, now
	p.reads++
	p.mu.Unlock()

	rctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	resp, err := p.read(rctx, u.user)
	cancel()
	if err != nil && p.ctx.Err() == nil {
		zerolog.Ctx(p.ctx).Debug().Err(err).Stringer("user_id", u.user).Msg("Failed to read the Matrix user's presence")
	}

	p.mu.Lock()
	u.read = time.Now()
	var clients []*Client
	if p.users[u.user] == u { // not removed meanwhile
		// The cycle stretches with the users so that the requests stay
		// within the gap.
		cycle := max(p.interval, time.Duration(len(p.users))*p.gap)
		u.due = u.read.Add(cycle)
		heap.Push(&p.due, u)
		clients = append(clients, u.clients...)
	}
	p.busy = false
	p.armLocked()
	p.mu.Unlock()
	if err == nil {
		for _, c := range clients {
			c.setOwnPresence(resp)
		}
	}
}

// dueHeap orders the polled users by when they are due.
type dueHeap []*polledUser

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *dueHeap) Push(x any) {
	u := x.(*polledUser)
	u.index = len(*h)
	*h = append(*h, u)
}
func (h *dueHeap) Pop() any {
	old := *h
	u := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	u.index = -1
	return u
}

package bridge

import (
	"context"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// fakePresenceReads counts the poller's reads per user and answers each
// user's presence from a map.
type fakePresenceReads struct {
	mu    sync.Mutex
	reads map[id.UserID]int
	is    map[id.UserID]event.Presence
}

func (f *fakePresenceReads) read(_ context.Context, user id.UserID) (*mautrix.RespPresence, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads[user]++
	return &mautrix.RespPresence{Presence: f.is[user], StatusMsg: "status of " + string(user)}, nil
}

func (f *fakePresenceReads) count(user id.UserID) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads[user]
}

func (f *fakePresenceReads) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, v := range f.reads {
		n += v
	}
	return n
}

func testPoller(t *testing.T, interval, gap time.Duration) (*presencePoller, *fakePresenceReads) {
	t.Helper()
	f := &fakePresenceReads{reads: map[id.UserID]int{}, is: map[id.UserID]event.Presence{}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p := newPresencePoller(ctx, &PresenceConfig{}, f.read)
	p.interval, p.gap = interval, gap
	return p, f
}

func pollerClient(main *Connector, user id.UserID) *Client {
	return &Client{main: main, login: &bridgev2.UserLogin{UserLogin: &database.UserLogin{ID: "x", UserMXID: user}}}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPresencePollerOneReadPerUser: a user with two logins is read once per
// cycle for both, and each login gets the presence read.
func TestPresencePollerOneReadPerUser(t *testing.T) {
	p, f := testPoller(t, 300*time.Millisecond, time.Millisecond)
	main := &Connector{}
	f.is["@a:hs"], f.is["@b:hs"] = event.PresenceUnavailable, event.PresenceOffline
	a1, a2, b := pollerClient(main, "@a:hs"), pollerClient(main, "@a:hs"), pollerClient(main, "@b:hs")
	ctx := context.Background()
	for _, c := range []*Client{a1, a2, b} {
		p.add(ctx, c)
	}
	waitFor(t, "both users are read", func() bool { return f.count("@a:hs") > 0 && f.count("@b:hs") > 0 })
	time.Sleep(time.Second)
	for _, tc := range []struct {
		c    *Client
		show xmppclient.Show
	}{{a1, xmppclient.ShowAway}, {a2, xmppclient.ShowAway}, {b, xmppclient.ShowXA}} {
		show, status := tc.c.ownPresence()
		if show != tc.show || status != "status of "+string(tc.c.login.UserMXID) {
			t.Errorf("login of %s shows %q %q, want %q", tc.c.login.UserMXID, show, status, tc.show)
		}
	}
	// About 1.3 s / 300 ms = 4–5 reads each; two logins must not double @a's.
	if na, nb := f.count("@a:hs"), f.count("@b:hs"); na > nb+2 || na > 7 || nb > 7 {
		t.Errorf("reads: @a (2 logins) %d, @b (1 login) %d; want one read per user per cycle", na, nb)
	}
}

// TestPresencePollerRateCap: more users than the interval allows at the
// process's rate are read in a longer cycle; the requests never come faster
// than the gap, and every user is read.
func TestPresencePollerRateCap(t *testing.T) {
	const users = 20
	gap := 20 * time.Millisecond
	p, f := testPoller(t, 10*time.Millisecond, gap)
	main := &Connector{}
	for i := range users {
		p.add(context.Background(), pollerClient(main, id.UserID("@u"+string(rune('a'+i))+":hs")))
	}
	start := time.Now()
	time.Sleep(600 * time.Millisecond)
	if n, most := f.total(), int(time.Since(start)/gap)+1; n > most {
		t.Errorf("%d reads in %v, more than one per %v (%d)", n, time.Since(start), gap, most)
	}
	waitFor(t, "every user is read", func() bool {
		for i := range users {
			if f.count(id.UserID("@u"+string(rune('a'+i))+":hs")) == 0 {
				return false
			}
		}
		return true
	})
}

// TestPresencePollerTouchAndRemove: a user is read when added, not again
// within the interval unless active in a portal (and then not more often
// than the touch gap); a login whose context ended is no longer read and
// the poller's timer is stopped with the last one.
func TestPresencePollerTouchAndRemove(t *testing.T) {
	p, f := testPoller(t, time.Hour, time.Millisecond)
	p.touchGap = 200 * time.Millisecond
	main := &Connector{}
	ctx, cancel := context.WithCancel(context.Background())
	p.add(ctx, pollerClient(main, "@a:hs"))
	waitFor(t, "the first read", func() bool { return f.count("@a:hs") == 1 })
	p.touch("@a:hs") // within the touch gap of the first read
	p.touch("@nobody:hs")
	time.Sleep(100 * time.Millisecond)
	if n := f.count("@a:hs"); n != 1 {
		t.Fatalf("a touch within the touch gap read again (%d reads)", n)
	}
	time.Sleep(150 * time.Millisecond)
	p.touch("@a:hs")
	waitFor(t, "the touch's read", func() bool { return f.count("@a:hs") == 2 })
	if f.count("@nobody:hs") != 0 {
		t.Error("a user without a login was read")
	}
	cancel()
	waitFor(t, "the login is removed", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.users) == 0 && len(p.due) == 0
	})
	time.Sleep(300 * time.Millisecond)
	p.touch("@a:hs")
	time.Sleep(50 * time.Millisecond)
	if n := f.count("@a:hs"); n != 2 {
		t.Errorf("a removed login's user was read again (%d reads)", n)
	}
}

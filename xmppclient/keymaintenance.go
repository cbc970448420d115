package xmppclient

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// maintenanceInterval is how often keys are maintained while a login
// stays connected (signed prekey rotation is weekly; reconnects do it too).
const maintenanceInterval = 24 * time.Hour

// maintenanceSlack is how early a login's maintenance may run so that it
// shares a timer with the logins due after it: the schedule wakes at most
// once per slack, however many logins it holds.
const maintenanceSlack = time.Hour

// KeyMaintenance is the daily key maintenance of every login of the
// process (a signed prekey rotation when due, then the bundle republished)
// on one timer: a login's entry is a row in a queue, not a timer of its
// own, so idle logins cause no wake-ups of their own. One goroutine, made
// by the timer, runs the due logins one after the other. The zero value is
// ready to use.
type KeyMaintenance struct {
	// Interval and Slack replace maintenanceInterval and
	// maintenanceSlack (tests); zero: the defaults.
	Interval, Slack time.Duration

	mu    sync.Mutex
	queue []maintenanceEntry // in due order: every entry is due Interval after it was queued
	timer *time.Timer        // armed for queue[0] while the queue is not empty
	fires atomic.Int64       // how often the timer fired (tests)
}

type maintenanceEntry struct {
	o         *OMEMO
	ctx       context.Context
	connected func() bool
	due       time.Time
}

func (k *KeyMaintenance) interval() time.Duration {
	if k.Interval > 0 {
		return k.Interval
	}
	return maintenanceInterval
}

func (k *KeyMaintenance) slack() time.Duration {
	if k.Slack > 0 {
		return k.Slack
	}
	return maintenanceSlack
}

// Keep maintains o's keys every interval for as long as its device exists
// and ctx lasts; connected says whether a session is up to publish on.
// Keeping a device that is already kept does nothing.
func (k *KeyMaintenance) Keep(ctx context.Context, o *OMEMO, connected func() bool) {
	o.mu.Lock()
	start := !o.maintaining
	o.maintaining = true
	o.mu.Unlock()
	if start {
		k.push(maintenanceEntry{o: o, ctx: ctx, connected: connected})
	}
}

// Len is how many devices the schedule keeps.
func (k *KeyMaintenance) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.queue)
}

func (k *KeyMaintenance) push(e maintenanceEntry) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e.due = time.Now().Add(k.interval()) // under the lock: the queue stays in due order
	k.queue = append(k.queue, e)
	if len(k.queue) == 1 {
		k.arm()
	}
}

// arm sets the timer for the head of the queue; k.mu is held.
func (k *KeyMaintenance) arm() {
	d := time.Until(k.queue[0].due)
	if k.timer == nil {
		k.timer = time.AfterFunc(d, k.fire)
		return
	}
	k.timer.Reset(d)
}

// fire runs every entry due within the slack, then queues again those
// whose device still exists.
func (k *KeyMaintenance) fire() {
	k.fires.Add(1)
	limit := time.Now().Add(k.slack())
	k.mu.Lock()
	n := 0
	for n < len(k.queue) && !k.queue[n].due.After(limit) {
		n++
	}
	due := make([]maintenanceEntry, n)
	copy(due, k.queue)
	k.queue = append(k.queue[:0], k.queue[n:]...)
	if len(k.queue) > 0 {
		k.arm()
	}
	k.mu.Unlock()
	for _, e := range due {
		if e.ctx.Err() == nil && e.o.maintain(e.ctx, e.connected) {
			k.push(e)
			continue
		}
		e.o.mu.Lock()
		e.o.maintaining = false
		e.o.mu.Unlock()
	}
}

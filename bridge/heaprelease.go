package bridge

import (
	"context"
	"runtime/debug"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// A wave of logins connecting (the process's start reconnecting every
// stored login, a reconnect of all after a network outage, many logins
// provisioned at once) leaves much garbage (XML, SQL, JSON, key
// generation) and little that stays. The runtime keeps the freed pages up
// to its heap goal, twice the live heap, and its scavenger returns them
// only slowly; an idle process allocates next to nothing to reuse them.
// So once no login has connected for heapReleaseQuiet after at least
// heapReleaseWave did, the connector returns the free heap to the OS at
// once: one full GC per wave, on one process-wide timer that is armed only
// while logins connect (none per login, none while idle).

// heapReleaseQuiet is how long no login may connect before the wave
// counts as settled: long enough for the last logins' first fetches.
const heapReleaseQuiet = 10 * time.Second

// heapReleaseWave is how many logins must have connected since the last
// release: a single reconnect is not worth a full GC.
const heapReleaseWave = 8

// heapWave counts the logins connected since the last release.
type heapWave struct {
	connects int
	last     time.Time // the last connect
}

// connect records a login connected at now and says whether the timer
// is to be (re)armed for quiet from now: once the wave is large enough.
func (w *heapWave) connect(now time.Time, wave int) bool {
	w.connects++
	w.last = now
	return w.connects >= wave
}

// due says, when the timer fires at now, whether the wave has settled and
// is to be released; it then starts a new wave. A connect that re-armed
// the timer as it fired makes this firing early: the next one decides.
func (w *heapWave) due(now time.Time, quiet time.Duration, wave int) bool {
	if w.connects < wave || now.Sub(w.last) < quiet {
		return false
	}
	w.connects = 0
	return true
}

// heapRelease is the process's one debounced release.
type heapRelease struct {
	ctx     context.Context // its logger; ended: no more releases
	quiet   time.Duration
	wave    int
	release func() // debug.FreeOSMemory

	mu    sync.Mutex
	w     heapWave
	timer *time.Timer
}

func newHeapRelease(ctx context.Context) *heapRelease {
	return &heapRelease{ctx: ctx, quiet: heapReleaseQuiet, wave: heapReleaseWave, release: debug.FreeOSMemory}
}

// connected is called whenever a login's session is up.
func (h *heapRelease) connected() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.w.connect(time.Now(), h.wave) {
		return
	}
	if h.timer == nil {
		h.timer = time.AfterFunc(h.quiet, h.fire)
		return
	}
	h.timer.Reset(h.quiet)
}

func (h *heapRelease) fire() {
	h.mu.Lock()
	n := h.w.connects
	due := h.w.due(time.Now(), h.quiet, h.wave)
	h.mu.Unlock()
	if !due || h.ctx.Err() != nil {
		return
	}
	start := time.Now()
	h.release()
	zerolog.Ctx(h.ctx).Debug().Int("logins", n).Dur("took", time.Since(start)).
		Msg("Returned the free heap of a wave of logins to the OS")
}

// heapReleaser is the process's heap release, made at the first connect.
func (xc *Connector) heapReleaser() *heapRelease {
	xc.heapOnce.Do(func() {
		ctx := xc.backgroundCtx()
		if xc.Bridge != nil {
			ctx = xc.Bridge.Log.With().Str("component", "heap release").Logger().WithContext(ctx)
		}
		xc.heap = newHeapRelease(ctx)
	})
	return xc.heap
}

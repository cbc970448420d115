package bridge

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestHeapWave(t *testing.T) {
	const quiet, wave = 10 * time.Second, 3
	type step struct {
		at      time.Duration // since the start
		fire    bool          // the timer fires (else a login connects)
		want    bool          // connect: arm the timer; fire: release
		connect int           // after the step: connects counted in the wave
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"a wave, then quiet: one release", []step{
			{at: 0, want: false, connect: 1},
			{at: time.Second, want: false, connect: 2},
			{at: 2 * time.Second, want: true, connect: 3},
			{at: 12 * time.Second, fire: true, want: true, connect: 0},
		}},
		{"too few logins: never armed, no release", []step{
			{at: 0, want: false, connect: 1},
			{at: time.Second, want: false, connect: 2},
			{at: time.Minute, fire: true, want: false, connect: 2},
		}},
		{"logins keep connecting: each re-arms, no release until quiet", []step{
			{at: 0, connect: 1},
			{at: time.Second, connect: 2},
			{at: 2 * time.Second, want: true, connect: 3},
			{at: 9 * time.Second, want: true, connect: 4},
			{at: 18 * time.Second, want: true, connect: 5},
			{at: 28 * time.Second, fire: true, want: true, connect: 0},
		}},
		{"a connect just before an early firing: that firing does nothing, the next releases", []step{
			{at: 0, connect: 1},
			{at: 0, connect: 2},
			{at: 0, want: true, connect: 3},
			{at: 10 * time.Second, want: true, connect: 4},
			{at: 10 * time.Second, fire: true, want: false, connect: 4},
			{at: 20 * time.Second, fire: true, want: true, connect: 0},
		}},
		{"a second wave after a release needs its own logins", []step{
			{at: 0, connect: 1},
			{at: 0, connect: 2},
			{at: 0, want: true, connect: 3},
			{at: 10 * time.Second, fire: true, want: true, connect: 0},
			{at: time.Minute, want: false, connect: 1},
			{at: 2 * time.Minute, fire: true, want: false, connect: 1},
			{at: 3 * time.Minute, connect: 2},
			{at: 4 * time.Minute, want: true, connect: 3},
			{at: 4*time.Minute + quiet, fire: true, want: true, connect: 0},
		}},
	}
	start := time.Date(2026, 12, 7, 21, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w heapWave
			for i, s := range tt.steps {
				now := start.Add(s.at)
				var got bool
				if s.fire {
					got = w.due(now, quiet, wave)
				} else {
					got = w.connect(now, wave)
				}
				if got != s.want {
					t.Errorf("step %d (at %s, fire %v): got %v, want %v", i, s.at, s.fire, got, s.want)
				}
				if w.connects != s.connect {
					t.Errorf("step %d: %d connects counted, want %d", i, w.connects, s.connect)
				}
			}
		})
	}
}

// TestHeapReleaseTimer runs the real timer: one release per settled wave,
// none for a wave too small or once the context ended.
func TestHeapReleaseTimer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var releases atomic.Int32
	h := &heapRelease{ctx: ctx, quiet: 50 * time.Millisecond, wave: 3, release: func() { releases.Add(1) }}

	h.connected()
	h.connected()
	time.Sleep(200 * time.Millisecond)
	if n := releases.Load(); n != 0 {
		t.Fatalf("%d releases after two connects, want none", n)
	}
	// The third makes a wave (re-arming while logins connect is
	// TestHeapWave's: real sleeps are not exact under load).
	h.connected()
	deadline := time.Now().Add(5 * time.Second)
	for releases.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if n := releases.Load(); n != 1 {
		t.Fatalf("%d releases after the wave settled, want 1", n)
	}
	// Ended: a later wave releases nothing.
	cancel()
	for range 3 {
		h.connected()
	}
	time.Sleep(200 * time.Millisecond)
	if n := releases.Load(); n != 1 {
		t.Fatalf("%d releases after the context ended, want 1", n)
	}
}

package xmppclient

import (
	"context"
	"testing"
	"time"
)

// TestStreamOrderAndBackpressure: events are handled in the order put, also
// when they were put before Start; a full stream makes Put wait until the
// reader takes one (or Put's context ends); a drained stream holds no buffer.
func TestStreamOrderAndBackpressure(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := NewStream(2)
	s.Put(ctx, Event{Seq: 1})
	s.Put(ctx, Event{Seq: 2})

	// Full: a Put waits, and gives up when its context ends.
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	start := time.Now()
	s.Put(short, Event{Seq: 99})
	cancelShort()
	if time.Since(start) < 40*time.Millisecond {
		t.Fatal("Put on a full stream did not wait")
	}

	got := make(chan uint64, 16)
	release := make(chan struct{})
	s.Start(ctx, func(_ context.Context, ev Event) {
		if ev.Seq == 1 {
			<-release // hold the reader so the stream fills again
		}
		got <- ev.Seq
	})
	put3 := make(chan struct{})
	go func() {
		s.Put(ctx, Event{Seq: 3}) // the stream holds 2 and 3 once 1 was taken
		s.Put(ctx, Event{Seq: 4}) // waits until the reader takes 2
		close(put3)
	}()
	select {
	case <-put3:
		t.Fatal("Put did not wait on a full stream")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	select {
	case <-put3:
	case <-time.After(10 * time.Second):
		t.Fatal("Put still waiting after the reader took events")
	}
	for _, want := range []uint64{1, 2, 3, 4} {
		select {
		case seq := <-got:
			if seq != want {
				t.Fatalf("handled %d, want %d (the event whose Put gave up must not appear)", seq, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d not handled", want)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		q := s.q
		s.mu.Unlock()
		if q == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("drained stream still holds a buffer of %d", cap(q))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

package bridge

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/id"
)

// fakeAcks is a server's acknowledged count that the test moves.
type fakeAcks struct {
	mu      sync.Mutex
	acked   int
	changed chan struct{}
	live    map[int]int // calls with a live context (a row's own wait), per stanza
}

func (f *fakeAcks) ack(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acked = n
	close(f.changed)
	f.changed = make(chan struct{})
}

// waiter waits like sm.WaitAcked: at once when acknowledged, else until
// the count reaches n or ctx ends.
func (f *fakeAcks) waiter(n int) ackWaiter {
	return func(ctx context.Context) error {
		if ctx.Err() == nil {
			f.mu.Lock()
			f.live[n]++
			f.mu.Unlock()
		}
		for {
			f.mu.Lock()
			if f.acked >= n {
				f.mu.Unlock()
				return nil
			}
			ch := f.changed
			f.mu.Unlock()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-ch:
			}
		}
	}
}

// TestDoneWhenAckedBatches: rows are done only once acknowledged, in order;
// the rows one acknowledgement covered are marked by the first of them
// (never waited for on their own), the rest wait for theirs.
func TestDoneWhenAckedBatches(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db := openIntakeDB(t, "sqlite3-fk-wal", "file:"+filepath.Join(t.TempDir(), "bridge.db")+"?_txlock=immediate")
	in := newIntake(db, zerolog.Nop())
	const room = id.RoomID("!r:x")
	var evts []intakeEvent
	for i := 1; i <= 6; i++ {
		evts = append(evts, intakeEvent{EventID: id.EventID(fmt.Sprintf("$e%d", i)), RoomID: room, JSON: []byte(`{}`)})
	}
	var seq int64
	if _, err := in.store.insert(ctx, evts, func() int64 { seq++; return seq }, make([]bool, len(evts))); err != nil {
		t.Fatal(err)
	}
	f := &fakeAcks{changed: make(chan struct{}), live: map[int]int{}}
	for i, e := range evts {
		in.acks.Store(e.EventID, f.waiter(i+1))
		if !in.doneWhenAcked(ctx, &intakeRow{EventID: e.EventID, RoomID: room, Seq: int64(i + 1)}) {
			t.Fatalf("row %d not taken over", i+1)
		}
	}
	done := func() []bool {
		out := make([]bool, len(evts))
		for i, e := range evts {
			st, _, err := in.store.state(ctx, e.EventID)
			if err != nil {
				t.Fatal(err)
			}
			out[i] = st == 3
		}
		return out
	}
	waitDone := func(want []bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			got := done()
			if fmt.Sprint(got) == fmt.Sprint(want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("done rows %v, want %v", got, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	time.Sleep(50 * time.Millisecond)
	waitDone([]bool{false, false, false, false, false, false})
	f.ack(4)
	waitDone([]bool{true, true, true, true, false, false})
	time.Sleep(50 * time.Millisecond)
	waitDone([]bool{true, true, true, true, false, false})
	f.ack(6)
	in.wait()
	waitDone([]bool{true, true, true, true, true, true})
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range []int{2, 3, 4} {
		if f.live[n] != 0 {
			t.Errorf("row %d was waited for on its own (%d times), not marked done with row 1", n, f.live[n])
		}
	}
	if f.live[1] == 0 || f.live[5] == 0 {
		t.Errorf("rows 1 and 5 should have waited for their acknowledgement: %v", f.live)
	}
}

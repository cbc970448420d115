package xmppclient

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLazyWorker: items put from several goroutines are all handled, one consumer at a time,
// each producer's items in its order, and no consumer goroutine is left once the queue is empty.
func TestLazyWorker(t *testing.T) {
	for _, tc := range []struct {
		name               string
		producers, perEach int
		queueSize          int
		slowEvery          int // a consumer step sleeps every slowEvery items (0: never)
	}{
		{"one producer", 1, 2000, 16, 0},
		{"many producers, small queue", 8, 500, 4, 0},
		{"slow consumer", 4, 200, 8, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			var w LazyWorker
			q := make(chan [2]int, tc.queueSize)
			var inside, handled atomic.Int32
			last := make([]int, tc.producers)
			for i := range last {
				last[i] = -1
			}
			var bad atomic.Value
			drain := func() {
				for {
					select {
					case it := <-q:
						if inside.Add(1) != 1 {
							bad.Store("two consumers at once")
						}
						if it[1] != last[it[0]]+1 {
							bad.Store("out of order")
						}
						last[it[0]] = it[1]
						if tc.slowEvery > 0 && it[1]%tc.slowEvery == 0 {
							time.Sleep(time.Millisecond)
						}
						inside.Add(-1)
						handled.Add(1)
					default:
						return
					}
				}
			}
			var wg sync.WaitGroup
			for p := range tc.producers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range tc.perEach {
						q <- [2]int{p, i}
						w.Kick(drain, func() bool { return len(q) > 0 })
					}
				}()
			}
			wg.Wait()
			deadline := time.Now().Add(30 * time.Second)
			for handled.Load() != int32(tc.producers*tc.perEach) || w.running.Load() {
				if time.Now().After(deadline) {
					t.Fatalf("handled %d of %d, running %v", handled.Load(), tc.producers*tc.perEach, w.running.Load())
				}
				time.Sleep(time.Millisecond)
			}
			if v := bad.Load(); v != nil {
				t.Fatal(v)
			}
			for runtime.NumGoroutine() > before {
				if time.Now().After(deadline) {
					t.Fatalf("%d goroutines left, %d before", runtime.NumGoroutine(), before)
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
}

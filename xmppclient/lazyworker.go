package xmppclient

import "sync/atomic"

// LazyWorker runs a queue's consumer goroutine only while the queue has
// work: an idle login holds no goroutine for its queues (issue 13: idle
// logins cost goroutines and memory). At most one consumer runs at a time,
// so a queue is still handled in order by one goroutine after another.
type LazyWorker struct {
	running atomic.Bool
}

// Kick makes sure a consumer runs: drain takes items until the queue is
// empty (or it should stop) and returns; pending says whether items are
// left to take. Call it after every put.
func (w *LazyWorker) Kick(drain func(), pending func() bool) {
	if !w.running.CompareAndSwap(false, true) {
		return
	}
	go func() {
		for {
			drain()
			w.running.Store(false)
			// An item put between drain's last look and the Store found
			// the worker running and did not start one: take it here.
			if !pending() || !w.running.CompareAndSwap(false, true) {
				return
			}
		}
	}()
}

package xmppclient

import (
	"math/rand/v2"
	"time"
)

// Backoff is the delay between reconnect attempts: exponential from Min to
// Max, with full jitter in the upper half so that many logins cut off at
// once do not all redial at the same instant.
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration
}

// Next is the delay before the next attempt.
func (b *Backoff) Next() time.Duration {
	if b.cur == 0 {
		b.cur = b.Min
	} else {
		b.cur *= 2
	}
	if b.cur > b.Max {
		b.cur = b.Max
	}
	half := b.cur / 2
	return half + rand.N(half+1)
}

// Reset starts again from Min, after a connection that worked.
func (b *Backoff) Reset() { b.cur = 0 }

package omemoxmpp

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mxomemo/xmpp-bridge/omemo"
)

// ErrRecentlyFailed: fetching this bundle failed a short while ago (no
// answer, an error, nothing published), so it is not asked for again yet.
var ErrRecentlyFailed = errors.New("omemoxmpp: bundle fetch failed recently")

// Misses is a negative cache of bundle fetches that failed: a device that
// is listed but whose server does not answer (or which published nothing)
// would otherwise cost a full IQ timeout on every message sent to the
// chat. It is bounded and safe for concurrent use; share one per account
// across sessions ([Options.Misses]).
type Misses struct {
	mu  sync.Mutex
	ttl time.Duration
	max int
	m   map[missKey]missEntry
}

type missKey struct {
	addr omemo.Address
	v    omemo.Version
}

type missEntry struct {
	at  time.Time
	err error
}

// Default bounds of a Misses made by NewMisses(0, 0).
const (
	DefaultMissTTL = 10 * time.Minute
	DefaultMissMax = 4096
)

// NewMisses returns a cache that remembers a failure for ttl, holding at
// most max entries (defaults for zero values).
func NewMisses(ttl time.Duration, max int) *Misses {
	if ttl <= 0 {
		ttl = DefaultMissTTL
	}
	if max <= 0 {
		max = DefaultMissMax
	}
	return &Misses{ttl: ttl, max: max, m: map[missKey]missEntry{}}
}

// check returns a non-nil error when a fetch of addr's bundle for v failed
// within the TTL.
func (ms *Misses) check(addr omemo.Address, v omemo.Version) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	e, ok := ms.m[missKey{addr, v}]
	if !ok {
		return nil
	}
	if time.Since(e.at) >= ms.ttl {
		delete(ms.m, missKey{addr, v})
		return nil
	}
	return fmt.Errorf("%w: %s (%s): %w", ErrRecentlyFailed, addr, v, e.err)
}

// add records a failed fetch. When full, expired entries go first, then
// (under a flood of distinct devices) everything: the cache only saves
// work, forgetting costs one more fetch.
func (ms *Misses) add(addr omemo.Address, v omemo.Version, err error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if len(ms.m) >= ms.max {
		for k, e := range ms.m {
			if time.Since(e.at) >= ms.ttl {
				delete(ms.m, k)
			}
		}
		if len(ms.m) >= ms.max {
			clear(ms.m)
		}
	}
	ms.m[missKey{addr, v}] = missEntry{at: time.Now(), err: err}
}

// forget drops what is known about addr (its bundle was fetched, or its
// device list changed).
func (ms *Misses) forget(addr omemo.Address, v omemo.Version) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	delete(ms.m, missKey{addr, v})
}

// Len is the number of entries (for tests and metrics).
func (ms *Misses) Len() int {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return len(ms.m)
}

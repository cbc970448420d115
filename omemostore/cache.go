package omemostore

import (
	"context"
	"slices"
	"sync"
	"time"

	"go.mau.fi/util/dbutil"

	"github.com/mxomemo/xmpp-bridge/omemo"
)

// A Store caches device lists and trust records, which were read from the
// database for every message (issue 13: a trust-record query and a
// device-list query per bridged message). They change rarely (a contact's
// device list push, a trust decision), always through this Store's Put
// methods, which invalidate the entry.
//
// Correctness with transactions: a read inside a transaction is neither
// served from nor put into the cache (it may see the transaction's own
// uncommitted writes). A write inside a transaction drops the entry and
// keeps the key out of the cache for txWriteQuiet: until that transaction
// commits, a read outside it still sees the old rows and must not cache
// them. The bridge's transactions last milliseconds; txWriteQuiet is far
// longer. Every read that raced a write is refused by the generation check.
//
// One Store per account must do the writes: takeover.go's Delete through a
// second Store only runs for a login that is being removed.
const txWriteQuiet = time.Minute

type cacheKey struct {
	kind    uint8 // 1: device list, 2: trust records
	version omemo.Version
	jid     string
}

type storeCache struct {
	mu      sync.Mutex
	gen     uint64
	devices map[cacheKey][]omemo.Device
	trust   map[cacheKey][]omemo.TrustRecord
	quiet   map[cacheKey]time.Time // written in a transaction at
	// quietAll: everything was deleted in a transaction at (Delete).
	quietAll time.Time
}

func inTxn(ctx context.Context, db *dbutil.Database) bool {
	_, ok := db.Execable(ctx).(dbutil.Transaction)
	return ok
}

// lookup returns the cached value of k (copies) and the generation to put
// a freshly read value back with; inside a transaction it never hits.
func (c *storeCache) lookup(k cacheKey, txn bool) (devices []omemo.Device, trust []omemo.TrustRecord, hit bool, gen uint64) {
	if txn {
		return nil, nil, false, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch k.kind {
	case 1:
		devices, hit = c.devices[k]
	case 2:
		trust, hit = c.trust[k]
	}
	return slices.Clone(devices), slices.Clone(trust), hit, c.gen
}

// put stores a value read outside a transaction, unless a write came
// since gen or the key is quiet.
func (c *storeCache) put(k cacheKey, gen uint64, devices []omemo.Device, trust []omemo.TrustRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if time.Since(c.quietAll) < txWriteQuiet {
		return
	}
	if at, ok := c.quiet[k]; ok {
		if time.Since(at) < txWriteQuiet {
			return
		}
		delete(c.quiet, k)
	}
	switch k.kind {
	case 1:
		if c.devices == nil {
			c.devices = map[cacheKey][]omemo.Device{}
		}
		c.devices[k] = slices.Clone(devices)
	case 2:
		if c.trust == nil {
			c.trust = map[cacheKey][]omemo.TrustRecord{}
		}
		c.trust[k] = slices.Clone(trust)
	}
}

// invalidate drops k after a write (all keys when all is set).
func (c *storeCache) invalidate(k cacheKey, txn, all bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if all {
		c.devices, c.trust = nil, nil
		if txn {
			c.quietAll = time.Now()
		}
		return
	}
	delete(c.devices, k)
	delete(c.trust, k)
	if txn {
		if c.quiet == nil {
			c.quiet = map[cacheKey]time.Time{}
		}
		c.quiet[k] = time.Now()
	}
}

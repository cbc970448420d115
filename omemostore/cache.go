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
// Correctness with transactions: a write inside a transaction drops the
// entry and keeps the key quiet (out of the cache): until that transaction
// commits, a read outside it still sees the old rows and must not cache
// them. The key stays quiet until the transaction is over when it was begun
// by Store.DoTxn (which knows when that is), else for txWriteQuiet (the
// bridge's transactions last milliseconds; txWriteQuiet is far longer).
// Every read that raced a write is refused by the generation check.
//
// A read inside a transaction is served from the cache when the key is not
// quiet: an entry is only ever the committed rows, and the transaction has
// not written the key (its write would have made it quiet), so the entry is
// what the transaction itself would read. It never puts what it read (in
// SQLite's deferred transactions the rows may predate a commit whose
// invalidation came before); a miss inside Store.DoTxn is read again
// outside, after the transaction, and that read is cached. So the
// decryption's transaction, which reads the sender's trust (and in rooms
// its device list) for every message, reads them from the cache.
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
	quiet   map[cacheKey]quietMark
	// sessions: committed session records (sessions.go), and the
	// generations of those forgotten.
	sessions map[sessionKey]knownSession
	// quietAll: everything was deleted in a transaction at (Delete).
	quietAll time.Time
}

// quietMark is why a key is out of the cache: a write in a transaction of
// unknown end at (zero: none), and the transactions begun by Store.DoTxn
// that wrote it and are not over (open).
type quietMark struct {
	at   time.Time
	open int
}

func (q quietMark) quiet() bool {
	return q.open > 0 || (!q.at.IsZero() && time.Since(q.at) < txWriteQuiet)
}

// txnKeys are the keys a transaction begun by Store.DoTxn wrote (each
// counted open in the quiet marks until it is over) and read without a
// cache hit (read again once it is over, to cache them).
type txnKeys struct {
	written, missed []cacheKey
	sessions        []pendingSession // under storeCache.mu
	over            bool             // under storeCache.mu
}

type txnKeysKey struct{ s *Store }

func txnKeysOf(ctx context.Context, s *Store) *txnKeys {
	t, _ := ctx.Value(txnKeysKey{s}).(*txnKeys)
	return t
}

func inTxn(ctx context.Context, db *dbutil.Database) bool {
	_, ok := db.Execable(ctx).(dbutil.Transaction)
	return ok
}

// lookup returns the cached value of k (copies) and the generation to put
// a freshly read value back with; inside a transaction it hits only when
// k is not quiet (see above).
func (c *storeCache) lookup(k cacheKey, txn bool) (devices []omemo.Device, trust []omemo.TrustRecord, hit bool, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if txn && (time.Since(c.quietAll) < txWriteQuiet || c.quiet[k].quiet()) {
		return nil, nil, false, 0
	}
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
	if q, ok := c.quiet[k]; ok {
		if q.quiet() {
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

// invalidate drops k after a write (all keys when all is set). A write in
// a transaction begun by Store.DoTxn (t set) keeps k quiet until done(t).
func (c *storeCache) invalidate(k cacheKey, txn, all bool, t *txnKeys) {
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
	if !txn {
		return
	}
	if c.quiet == nil {
		c.quiet = map[cacheKey]quietMark{}
	}
	q := c.quiet[k]
	if t != nil && !t.over {
		q.open++
		t.written = append(t.written, k)
	} else {
		q.at = time.Now()
	}
	c.quiet[k] = q
}

// done ends the quiet t's writes put on their keys: the transaction is
// over (committed or rolled back).
func (c *storeCache) done(t *txnKeys) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t.over = true
	if len(t.written) == 0 {
		return
	}
	// A read outside that ran before the commit must not be put now.
	c.gen++
	for _, k := range t.written {
		q := c.quiet[k]
		if q.open--; q.quiet() {
			c.quiet[k] = q
		} else {
			delete(c.quiet, k)
		}
	}
}

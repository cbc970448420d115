package omemostore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/mxomemo/xmpp-bridge/omemo"
)

// The Manager keeps a session decoded between messages and asks
// SessionMatches, before every decryption, whether the stored record is
// still the one it decoded (omemo/sessioncache.go). That was a read of the
// whole record per message. The Store now knows the committed record of a
// device whose last write was committed by Store.DoTxn (the decryption's
// transaction): it answers from memory then, and from the database
// otherwise.
//
// A record is known only from the commit of such a write on: a write in a
// transaction that rolls back, or of unknown end (any other transaction),
// or outside a transaction, or a removal, forgets it until the next
// committed write through Store.DoTxn. Forgetting bumps the device's
// generation, so that a commit racing it does not put back what it wrote.
// Writes of one account go through its one Store (see cache.go).

// maxKnownSessions bounds the records kept (the Manager decodes at most 32).
const maxKnownSessions = 64

type sessionKey struct {
	v    omemo.Version
	addr omemo.Address
}

type knownSession struct {
	rec   []byte // nil: not known
	gen   uint64
	known bool
}

// pendingSession is a write of a transaction begun by Store.DoTxn, known
// once that commits, if the device's generation is still gen.
type pendingSession struct {
	key sessionKey
	rec []byte
	gen uint64
}

var _ omemo.SessionMatcher = (*Store)(nil)

// SessionMatches implements omemo.SessionMatcher.
func (s *Store) SessionMatches(ctx context.Context, v omemo.Version, addr omemo.Address, record []byte) (bool, error) {
	if rec, ok := s.cache.knownSession(sessionKey{v, addr}); ok {
		return bytes.Equal(rec, record), nil
	}
	var stored []byte
	err := s.db.QueryRow(ctx, `SELECT record FROM omemo_session WHERE account=$1 AND version=$2 AND jid=$3 AND device_id=$4`,
		s.account, int(v), addr.JID, int64(addr.Device)).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("failed to load %s session with %s: %w", v, addr, err)
	}
	return bytes.Equal(stored, record), nil
}

// knownSession is the committed record of k, when known. A transaction
// that wrote k made it unknown, so inside one it is what that would read.
func (c *storeCache) knownSession(k sessionKey) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.sessions[k]
	return e.rec, ok && e.known
}

// sessionWritten forgets k's record; a write in a transaction begun by
// Store.DoTxn (t) is known once that commits.
func (c *storeCache) sessionWritten(k sessionKey, rec []byte, t *txnKeys) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gen := c.forgetSession(k)
	if t != nil && !t.over && rec != nil {
		t.sessions = append(t.sessions, pendingSession{key: k, rec: bytes.Clone(rec), gen: gen})
	}
}

// forgetSession makes k unknown and returns its new generation.
func (c *storeCache) forgetSession(k sessionKey) uint64 {
	if c.sessions == nil {
		c.sessions = map[sessionKey]knownSession{}
	}
	e := c.sessions[k]
	e.rec, e.known = nil, false
	e.gen++
	c.sessions[k] = e
	return e.gen
}

// forgetSessions makes every record unknown (Delete).
func (c *storeCache) forgetSessions() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.sessions {
		c.forgetSession(k)
	}
}

// committed makes t's session writes known: t committed.
func (c *storeCache) committed(t *txnKeys) {
	if len(t.sessions) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range t.sessions {
		e := c.sessions[p.key]
		if e.gen != p.gen {
			continue // written or removed since
		}
		if !e.known && c.knownCount() >= maxKnownSessions {
			c.dropOneKnown()
		}
		e.rec, e.known = p.rec, true
		c.sessions[p.key] = e
	}
}

func (c *storeCache) knownCount() int {
	n := 0
	for _, e := range c.sessions {
		if e.known {
			n++
		}
	}
	return n
}

// dropOneKnown forgets an arbitrary known record (the bound).
func (c *storeCache) dropOneKnown() {
	for k, e := range c.sessions {
		if e.known {
			c.forgetSession(k)
			return
		}
	}
}

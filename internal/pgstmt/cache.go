package pgstmt

import (
	"container/list"
	"sync/atomic"
)

// schemaEpoch counts the schema changes run through any connection of the process (a
// migration's DDL, a DISCARD). A connection that sees it move closes every statement it holds
// before its next query: one prepared before a change may no longer run ("cached plan must not
// change result type"), and inside a transaction that error could not be retried.
var schemaEpoch atomic.Uint64

// cache is one connection's prepared statements, least recently used first out. A query is
// prepared on its second use: one-off queries (a mass insert of N rows has its own text for
// each N) go through lib/pq's unnamed path and never push a hot statement out.
type cache struct {
	capacity int
	lru      list.List // of *entry, most recently used at the front
	byQuery  map[string]*list.Element
	seen     map[string]struct{} // queries used once, not prepared; cleared when it holds seenFactor×capacity
	epoch    uint64              // schemaEpoch when the statements were last checked
}

const seenFactor = 4

type entry struct {
	query string
	st    pqStmt
}

func newCache(capacity int) *cache {
	c := &cache{
		capacity: capacity,
		byQuery:  make(map[string]*list.Element, capacity),
		seen:     make(map[string]struct{}),
		epoch:    schemaEpoch.Load(),
	}
	c.lru.Init()
	return c
}

// get returns query's statement, nil when it has none, and marks it used.
func (c *cache) get(query string) pqStmt {
	el, ok := c.byQuery[query]
	if !ok {
		return nil
	}
	c.lru.MoveToFront(el)
	return el.Value.(*entry).st
}

// admit says whether query is used for the second time (and should be prepared); the first
// time it only remembers it.
func (c *cache) admit(query string) bool {
	if _, ok := c.seen[query]; ok {
		delete(c.seen, query)
		return true
	}
	if len(c.seen) >= seenFactor*c.capacity {
		clear(c.seen)
	}
	c.seen[query] = struct{}{}
	return false
}

func (c *cache) full() bool { return c.lru.Len() >= c.capacity }

func (c *cache) put(query string, st pqStmt) {
	c.byQuery[query] = c.lru.PushFront(&entry{query: query, st: st})
}

// remove takes query's statement out and returns it (nil when there is none).
func (c *cache) remove(query string) pqStmt {
	el, ok := c.byQuery[query]
	if !ok {
		return nil
	}
	delete(c.byQuery, query)
	return c.lru.Remove(el).(*entry).st
}

// removeOldest takes the least recently used statement out.
func (c *cache) removeOldest() pqStmt {
	el := c.lru.Back()
	if el == nil {
		return nil
	}
	return c.remove(el.Value.(*entry).query)
}

// len is the number of statements held.
func (c *cache) len() int { return c.lru.Len() }

// Package pgstmt is a database/sql driver for PostgreSQL that reuses prepared statements. It is
// lib/pq's driver underneath; each connection keeps its parameterised queries as named
// statements (an LRU per connection), so a query run again costs one round trip
// (Bind/Execute/Sync) instead of lib/pq's two (Parse/Describe/Sync of an unnamed statement, then
// Bind/Execute/Sync), and the server neither parses nor plans it again. It serves every query of
// the pool: ours, bridgev2's and the Megolm store's.
//
// The driver is registered as "postgres-stmtcache", which go.mau.fi/util's dbutil reads as the
// Postgres dialect; deploy.TuneDatabase switches a "postgres" database section to it. The URI
// parameter statement_cache_capacity (0 turns the cache off) is read and removed here, lib/pq
// never sees it. Errors, argument conversion (pq.Array, []byte) and result decoding are lib/pq's
// own: the wrapper only chooses between its unnamed path and a statement it prepared.
//
// It imports nothing of ours.
package pgstmt

package deploy

import (
	"fmt"
	"net/url"
	"strings"

	"go.mau.fi/util/dbutil"

	"github.com/mxomemo/xmpp-bridge/internal/pgstmt"
)

// StmtCacheSize is how many prepared statements each SQLite connection keeps (mattn/go-sqlite3's
// _stmt_cache_size). Without it every query, ours, bridgev2's and the Megolm store's alike, is
// parsed and prepared again on every call: a profile of a message burst showed more SQLite time
// in sqlite3_prepare than in executing the statements. A bridge runs a few hundred distinct
// statements, a hot set of a few dozen per message.
const StmtCacheSize = 128

// TuneDatabase adjusts the database section before mxmain opens the pool, for what only costs
// CPU when left at mxmain's generic defaults, never for semantics:
//   - SQLite URIs get _stmt_cache_size (unless they set one), so that statements are prepared
//     once per connection and reused;
//   - type postgres becomes pgstmt.DriverName, lib/pq with a cache of named statements per
//     connection, for the same reason (lib/pq parses every parameterised query again, in an
//     extra round trip); statement_cache_capacity=0 in the URI keeps lib/pq as it is;
//   - max_idle_conns below max_open_conns is raised to it: with mxmain's template value of 1,
//     every burst that uses more than one connection closes the others after it and opens them
//     again at the next one (for SQLite a new connection runs its PRAGMAs and loses its
//     statement cache; for PostgreSQL it is a new session).
//
// It returns one line per change, for the log.
func TuneDatabase(c *dbutil.PoolConfig) []string {
	var changes []string
	switch c.Type {
	case "sqlite3-fk-wal", "sqlite3-fk-wal-fullsync", "litestream":
		if !hasURIParam(c.URI, "_stmt_cache_size") {
			sep := "?"
			if strings.ContainsRune(c.URI, '?') {
				sep = "&"
			}
			c.URI += fmt.Sprintf("%s_stmt_cache_size=%d", sep, StmtCacheSize)
			changes = append(changes, fmt.Sprintf("SQLite statement cache of %d per connection", StmtCacheSize))
		}
	case "postgres":
		capacity, pqURI, err := pgstmt.SplitDSN(c.URI)
		switch {
		case err != nil:
			// The driver refuses the URI when the pool opens, saying why.
			c.Type = pgstmt.DriverName
		case capacity == 0:
			c.URI = pqURI
			changes = append(changes, fmt.Sprintf("PostgreSQL statement cache off (%s=0)", pgstmt.CapacityParam))
		default:
			c.Type = pgstmt.DriverName
			changes = append(changes, fmt.Sprintf("PostgreSQL statement cache of %d per connection (driver %s)", capacity, pgstmt.DriverName))
		}
	}
	if c.MaxOpenConns > 0 && c.MaxIdleConns < c.MaxOpenConns {
		changes = append(changes, fmt.Sprintf("max_idle_conns %d raised to max_open_conns %d", c.MaxIdleConns, c.MaxOpenConns))
		c.MaxIdleConns = c.MaxOpenConns
	}
	return changes
}

func hasURIParam(uri, name string) bool {
	_, query, ok := strings.Cut(uri, "?")
	if !ok {
		return false
	}
	params, err := url.ParseQuery(query)
	if err != nil {
		return strings.Contains(query, name+"=")
	}
	return params.Has(name)
}

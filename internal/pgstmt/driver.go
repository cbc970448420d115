package pgstmt

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/lib/pq"
)

// DriverName is the name the driver is registered under; it starts with "postgres" so that
// dbutil.ParseDialect gives the Postgres dialect.
const DriverName = "postgres-stmtcache"

// CapacityParam is the URI parameter that sets how many statements each connection keeps.
const CapacityParam = "statement_cache_capacity"

// DefaultCapacity is the statements each connection keeps when the URI does not say. A bridge
// runs a few hundred distinct statements, a hot set of a few dozen per message (the SQLite cache
// of deploy.StmtCacheSize has the same size).
const DefaultCapacity = 128

func init() {
	sql.Register(DriverName, Driver{})
}

// Driver opens lib/pq connections wrapped with a statement cache.
type Driver struct{}

var (
	_ driver.Driver        = Driver{}
	_ driver.DriverContext = Driver{}
	_ driver.Connector     = (*connector)(nil)
)

// Open opens one connection; database/sql uses OpenConnector instead. lib/pq's errors are
// returned as they are, so that callers see the same types as with lib/pq alone.
func (Driver) Open(dsn string) (driver.Conn, error) {
	capacity, pqDSN, err := SplitDSN(dsn)
	if err != nil {
		return nil, err
	}
	cn, err := pq.Driver{}.Open(pqDSN)
	if err != nil {
		return nil, err
	}
	return wrap(cn, capacity)
}

// OpenConnector parses the DSN once for the pool, as lib/pq's own connector does.
func (Driver) OpenConnector(dsn string) (driver.Connector, error) {
	capacity, pqDSN, err := SplitDSN(dsn)
	if err != nil {
		return nil, err
	}
	pc, err := pq.NewConnector(pqDSN)
	if err != nil {
		return nil, err
	}
	return &connector{pq: pc, capacity: capacity}, nil
}

type connector struct {
	pq       *pq.Connector
	capacity int
}

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	cn, err := c.pq.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return wrap(cn, c.capacity)
}

func (c *connector) Driver() driver.Driver { return Driver{} }

// kvParam finds the parameter in a key=value DSN ("host=… dbname=… statement_cache_capacity=0").
var kvParam = regexp.MustCompile(`(?:^|\s)` + CapacityParam + `\s*=\s*('[^']*'|\S*)`)

// SplitDSN reads the statement cache's capacity from a lib/pq DSN (URL or key=value form) and
// returns the DSN without it: lib/pq would send an unknown parameter to the server, which
// refuses it. Without the parameter the capacity is DefaultCapacity and the DSN is unchanged.
func SplitDSN(dsn string) (capacity int, pqDSN string, err error) {
	var raw string
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			// lib/pq reports a URI it cannot read; this parameter cannot be in it.
			return DefaultCapacity, dsn, nil
		}
		q := u.Query()
		if !q.Has(CapacityParam) {
			return DefaultCapacity, dsn, nil
		}
		raw = q.Get(CapacityParam)
		q.Del(CapacityParam)
		u.RawQuery = q.Encode()
		pqDSN = u.String()
	} else {
		m := kvParam.FindStringSubmatchIndex(dsn)
		if m == nil {
			return DefaultCapacity, dsn, nil
		}
		raw = strings.Trim(dsn[m[2]:m[3]], "'")
		pqDSN = strings.TrimSpace(strings.TrimRight(dsn[:m[0]], " \t\n") + " " + strings.TrimLeft(dsn[m[1]:], " \t\n"))
	}
	capacity, err = strconv.Atoi(raw)
	if err != nil || capacity < 0 {
		return 0, "", fmt.Errorf("pgstmt: %s=%q is not a count of statements", CapacityParam, raw)
	}
	return capacity, pqDSN, nil
}

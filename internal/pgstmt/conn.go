package pgstmt

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"regexp"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"
)

// pqConn is what lib/pq v1.12.3's connection implements (its conn.go asserts each). conn
// implements the same set, so that database/sql treats it as it treats lib/pq's: argument
// conversion (CheckNamedValue: pq.Array for slices, []byte as it is), pings, session resets.
type pqConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.NamedValueChecker
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// pqStmt is lib/pq's prepared statement.
type pqStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// pqRows is what lib/pq's rows implement; rows keeps the set.
type pqRows interface {
	driver.Rows
	driver.RowsNextResultSet
	driver.RowsColumnTypeScanType
	driver.RowsColumnTypeDatabaseTypeName
	driver.RowsColumnTypeLength
	driver.RowsColumnTypePrecisionScale
}

var (
	_ pqConn    = (*conn)(nil)
	_ pqRows    = (*rows)(nil)
	_ driver.Tx = (*tx)(nil)
)

// errQueryInProgress is lib/pq's answer to a query sent while rows are open on the connection.
var errQueryInProgress = errors.New("pq: there is already a query being processed on this connection")

// schemaChange matches what may change the result or existence of prepared statements. Only
// statements without arguments can be these: utility statements take no parameters, so they
// reach lib/pq's simple protocol.
var schemaChange = regexp.MustCompile(`(?im)(?:^|;)\s*(?:create|alter|drop|discard|deallocate)\b`)

// conn is one lib/pq connection with its statement cache. database/sql uses a connection from
// one goroutine at a time (rows are closed under the same lock), so it needs no lock of its own.
type conn struct {
	pq    pqConn
	cache *cache // nil when the capacity is 0: every query goes to lib/pq as it is
	inTx  bool   // between BeginTx and Commit/Rollback
	// ddlInTx: the open transaction changed the schema; nothing is prepared until it ends, as a
	// statement prepared in it would carry a schema the transaction may roll back.
	ddlInTx bool
	// busy: rows of this connection are open. lib/pq refuses a second query on its unnamed path
	// then, but not through a prepared statement, where it would break the protocol.
	busy bool
}

func wrap(cn driver.Conn, capacity int) (driver.Conn, error) {
	pc, ok := cn.(pqConn)
	if !ok {
		_ = cn.Close()
		return nil, fmt.Errorf("pgstmt: lib/pq's connection %T lacks an interface database/sql uses", cn)
	}
	c := &conn{pq: pc}
	if capacity > 0 {
		c.cache = newCache(capacity)
	}
	return c, nil
}

// QueryContext runs a query with arguments through its prepared statement once it has one;
// without arguments it is lib/pq's simple protocol (which also takes several statements).
func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if c.busy {
		return nil, errQueryInProgress
	}
	r, err := c.query(ctx, query, args)
	if err != nil {
		return nil, err
	}
	pr, ok := r.(pqRows)
	if !ok {
		_ = r.Close()
		return nil, fmt.Errorf("pgstmt: lib/pq's rows %T lack an interface database/sql uses", r)
	}
	c.busy = true
	return &rows{pqRows: pr, c: c}, nil
}

func (c *conn) query(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if len(args) == 0 {
		defer c.noteSimple(query)
		return c.pq.QueryContext(ctx, query, args)
	}
	st, err := c.lookup(ctx, query)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return c.pq.QueryContext(ctx, query, args)
	}
	r, err := st.QueryContext(ctx, args)
	if err != nil && c.dropStale(query, err) && !c.inTx {
		return c.pq.QueryContext(ctx, query, args)
	}
	return r, err
}

// ExecContext is QueryContext's counterpart for statements without rows.
func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if c.busy {
		return nil, errQueryInProgress
	}
	if len(args) == 0 {
		defer c.noteSimple(query)
		return c.pq.ExecContext(ctx, query, args)
	}
	st, err := c.lookup(ctx, query)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return c.pq.ExecContext(ctx, query, args)
	}
	res, err := st.ExecContext(ctx, args)
	if err != nil && c.dropStale(query, err) && !c.inTx {
		return c.pq.ExecContext(ctx, query, args)
	}
	return res, err
}

// lookup returns query's prepared statement, preparing it on its second use; nil means lib/pq's
// unnamed path.
func (c *conn) lookup(ctx context.Context, query string) (pqStmt, error) {
	if c.cache == nil {
		return nil, nil
	}
	if e := schemaEpoch.Load(); e != c.cache.epoch {
		c.cache.epoch = e
		for c.cache.len() > 0 {
			if err := closeStmt(c.cache.removeOldest()); err != nil {
				return nil, err
			}
		}
	}
	if st := c.cache.get(query); st != nil {
		return st, nil
	}
	if c.ddlInTx || !c.cache.admit(query) {
		return nil, nil
	}
	if c.cache.full() {
		if err := closeStmt(c.cache.removeOldest()); err != nil {
			return nil, err
		}
	}
	s, err := c.pq.PrepareContext(ctx, query)
	if err != nil {
		return nil, err // the error lib/pq's unnamed Parse would have given
	}
	st, ok := s.(pqStmt)
	if !ok {
		_ = s.Close()
		return nil, nil
	}
	c.cache.put(query, st)
	return st, nil
}

// dropStale takes query's statement out of the cache when err says the statement no longer fits
// the schema or no longer exists, and reports whether it did. Such an error comes from the
// server's check of the statement before it runs, so the query can run again unprepared, unless
// a transaction is open (the error aborted it).
func (c *conn) dropStale(query string, err error) bool {
	var pe *pq.Error
	if !errors.As(err, &pe) {
		return false
	}
	switch {
	case pe.Code == pqerror.FeatureNotSupported, // cached plan must not change result type
		pe.Code.Class() == pqerror.ClassInvalidSQLStatementName,          // DISCARD or DEALLOCATE ran
		pe.Code.Class() == pqerror.ClassSyntaxErrorOrAccessRuleViolation: // a column's type changed
	default:
		return false
	}
	_ = closeStmt(c.cache.remove(query))
	return true
}

// noteSimple is told every statement without arguments, after it ran.
func (c *conn) noteSimple(query string) {
	if !schemaChange.MatchString(query) {
		return
	}
	schemaEpoch.Add(1)
	if c.inTx {
		c.ddlInTx = true
	}
}

// closeStmt closes a statement on the server (one round trip). Only a broken connection is an
// error: a statement that is already gone is not.
func closeStmt(st pqStmt) error {
	if st == nil {
		return nil
	}
	if err := st.Close(); errors.Is(err, driver.ErrBadConn) {
		return err
	}
	return nil
}

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if c.busy {
		return nil, errQueryInProgress
	}
	t, err := c.pq.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	c.inTx = true
	return &tx{c: c, pq: t}, nil
}

// Begin is driver.Conn's; database/sql calls BeginTx.
func (c *conn) Begin() (driver.Tx, error) {
	t, err := c.pq.Begin()
	if err != nil {
		return nil, err
	}
	c.inTx = true
	return &tx{c: c, pq: t}, nil
}

// Prepare and PrepareContext are for database/sql's explicit statements, lib/pq's own.
func (c *conn) Prepare(query string) (driver.Stmt, error) { return c.pq.Prepare(query) }

func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.pq.PrepareContext(ctx, query)
}

func (c *conn) CheckNamedValue(nv *driver.NamedValue) error { return c.pq.CheckNamedValue(nv) }

func (c *conn) Ping(ctx context.Context) error { return c.pq.Ping(ctx) }

// ResetSession keeps the statements: they belong to the session, which the pool reuses.
func (c *conn) ResetSession(ctx context.Context) error {
	if c.busy {
		return driver.ErrBadConn
	}
	return c.pq.ResetSession(ctx)
}

func (c *conn) IsValid() bool { return !c.busy && c.pq.IsValid() }

// Close ends the session, which frees its statements on the server.
func (c *conn) Close() error { return c.pq.Close() }

type tx struct {
	c  *conn
	pq driver.Tx
}

func (t *tx) Commit() error {
	defer t.c.endTx()
	return t.pq.Commit()
}

func (t *tx) Rollback() error {
	defer t.c.endTx()
	return t.pq.Rollback()
}

// endTx: a schema change committed or rolled back moves the epoch again, so that what other
// connections prepared meanwhile is prepared again on the schema that stays.
func (c *conn) endTx() {
	c.inTx = false
	if c.ddlInTx {
		c.ddlInTx = false
		schemaEpoch.Add(1)
	}
}

// rows frees the connection for the next query when closed.
type rows struct {
	pqRows
	c *conn
}

func (r *rows) Close() error {
	err := r.pqRows.Close()
	r.c.busy = false
	return err
}

package pgstmt_test

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mxomemo/xmpp-bridge/internal/pgstmt"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

var dbSeq atomic.Int64

var notIdent = regexp.MustCompile(`[^a-z0-9_]+`)

// newDB creates a database for t in the shared cluster and opens it through the driver with
// the given capacity; plain is the same database through lib/pq alone (an outside session).
func newDB(t testing.TB, capacity int) (db, plain *sql.DB) {
	t.Helper()
	name := fmt.Sprintf("t%d_%s", dbSeq.Add(1), notIdent.ReplaceAllString(strings.ToLower(t.Name()), "_"))
	uri := testenv.SharedPostgres(t).CreateDatabase(t, name[:min(len(name), 63)])
	var err error
	if db, err = sql.Open(pgstmt.DriverName, fmt.Sprintf("%s&%s=%d", uri, pgstmt.CapacityParam, capacity)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if plain, err = sql.Open("postgres", uri); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plain.Close() })
	return db, plain
}

func mustExec(t testing.TB, q querier, query string, args ...any) {
	t.Helper()
	if _, err := q.ExecContext(t.Context(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// prepared is what the session holds in pg_prepared_statements: statement → times executed.
func prepared(t *testing.T, q querier) map[string]int64 {
	t.Helper()
	rows, err := q.QueryContext(t.Context(), "SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]int64{}
	for rows.Next() {
		var s string
		var n int64
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatal(err)
		}
		got[s] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func pin(t *testing.T, db *sql.DB) *sql.Conn {
	t.Helper()
	c, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func backendPID(t *testing.T, q querier) int {
	t.Helper()
	var pid int
	if err := q.QueryRowContext(t.Context(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	return pid
}

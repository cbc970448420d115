package pgstmt_test

import (
	"database/sql"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"
	"go.mau.fi/util/dbutil"

	"github.com/mxomemo/xmpp-bridge/internal/pgstmt"
)

// scanAll reads every row as the driver's values.
func scanAll(rows *sql.Rows) ([][]any, error) {
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		out = append(out, vals)
	}
	return out, rows.Err()
}

// TestSameAsLibPQ runs each query four times through the driver (lib/pq's unnamed statement,
// then prepared, then from the cache) and once through lib/pq alone: the rows, the argument
// conversions (pq.Array, a plain slice, []byte, uint64 past int64, NULL) and the errors
// (*pq.Error with its code) must be the same.
func TestSameAsLibPQ(t *testing.T) {
	db, plain := newDB(t, 128)
	mustExec(t, plain, "CREATE TABLE t (k BIGINT PRIMARY KEY, v TEXT, b BYTEA, u UUID)")
	mustExec(t, plain, "INSERT INTO t VALUES (1, 'a', '\\x00ff', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'), (2, 'b', NULL, NULL), (3, 'c', '', NULL)")
	when := time.Date(2026, 12, 7, 21, 15, 0, 123456000, time.UTC)
	tests := []struct {
		name     string
		query    string
		args     []any
		wantCode pqerror.Code // the error of runs after the first, when not ""
	}{
		{"text and int", "SELECT $1::text, $2::int", []any{"x", 5}, ""},
		{"binary columns", "SELECT k, b, u FROM t WHERE k = ANY($1) ORDER BY k", []any{pq.Array([]int64{1, 2, 3})}, ""},
		{"plain slice as array", "SELECT array_length($1::text[], 1), $1::text[]", []any{[]string{"a", "b", "c"}}, ""},
		{"bytes", "SELECT $1::bytea, octet_length($1::bytea)", []any{[]byte{0, 1, 2, 255}}, ""},
		{"uint64 past int64", "SELECT $1::numeric", []any{uint64(math.MaxUint64)}, ""},
		{"null", "SELECT $1::text IS NULL, v FROM t WHERE k = $2", []any{nil, 2}, ""},
		{"time", "SELECT $1::timestamptz, $1::timestamptz + interval '1 day'", []any{when}, ""},
		{"json", "SELECT $1::jsonb ->> 'a'", []any{[]byte(`{"a": "b"}`)}, ""},
		{"no rows", "SELECT v FROM t WHERE k = $1", []any{99}, ""},
		{"unique violation", "INSERT INTO t (k, v) VALUES ($1, $2) RETURNING k", []any{10, "z"}, pqerror.UniqueViolation},
		{"division by zero", "SELECT 1 / $1::int", []any{0}, pqerror.DivisionByZero},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var runs [][][]any
			for i := range 4 {
				rows, err := db.QueryContext(t.Context(), tt.query, tt.args...)
				var got [][]any
				if err == nil {
					got, err = scanAll(rows)
				}
				if tt.wantCode != "" && (i > 0 || tt.wantCode == pqerror.DivisionByZero) {
					var pe *pq.Error
					if !errors.As(err, &pe) || pe.Code != tt.wantCode {
						t.Fatalf("run %d: err = %#v, want *pq.Error %s", i, err, tt.wantCode)
					}
					_, plainErr := plain.ExecContext(t.Context(), tt.query, tt.args...)
					if err.Error() != plainErr.Error() {
						t.Errorf("run %d: error %q, lib/pq's %q", i, err, plainErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("run %d: %v", i, err)
				}
				runs = append(runs, got)
			}
			if tt.wantCode != "" {
				return
			}
			rows, err := plain.QueryContext(t.Context(), tt.query, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			want, err := scanAll(rows)
			if err != nil {
				t.Fatal(err)
			}
			for i, got := range runs {
				if !reflect.DeepEqual(got, want) {
					t.Errorf("run %d: got %#v, lib/pq gave %#v", i, got, want)
				}
			}
		})
	}
	if n := len(prepared(t, pin(t, db))); n == 0 {
		t.Error("no statement was prepared")
	}
}

// TestDialect: dbutil reads the driver's name as PostgreSQL and its queries work through it.
func TestDialect(t *testing.T) {
	_, plain := newDB(t, 128)
	var uri string
	if err := plain.QueryRowContext(t.Context(), "SELECT 'postgres://postgres@127.0.0.1:' || current_setting('port') || '/' || current_database() || '?sslmode=disable'").Scan(&uri); err != nil {
		t.Fatal(err)
	}
	db, err := dbutil.NewWithDialect(uri, pgstmt.DriverName)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if db.Dialect != dbutil.Postgres {
		t.Fatalf("dialect %v", db.Dialect)
	}
	for i := range 3 {
		var n int
		if err := db.QueryRow(t.Context(), "SELECT $1::int + 1", i).Scan(&n); err != nil || n != i+1 {
			t.Fatalf("got %d, %v", n, err)
		}
	}
}

// TestRuntimeParams: the URI's other parameters still reach lib/pq, which sends unknown ones to
// the server as settings; plan_cache_mode=force_custom_plan (docs/scaling.md) plans every
// execution of a cached statement with its arguments, as lib/pq's unnamed statements were.
func TestRuntimeParams(t *testing.T) {
	_, plain := newDB(t, 128)
	var uri string
	if err := plain.QueryRowContext(t.Context(), "SELECT 'postgres://postgres@127.0.0.1:' || current_setting('port') || '/' || current_database() || '?sslmode=disable&statement_cache_capacity=4&plan_cache_mode=force_custom_plan'").Scan(&uri); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open(pgstmt.DriverName, uri)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	db.SetMaxOpenConns(1)
	var mode string
	if err := db.QueryRowContext(t.Context(), "SHOW plan_cache_mode").Scan(&mode); err != nil || mode != "force_custom_plan" {
		t.Fatalf("plan_cache_mode %q, %v", mode, err)
	}
	for i := range 8 {
		var n int
		if err := db.QueryRowContext(t.Context(), "SELECT $1::int", i).Scan(&n); err != nil || n != i {
			t.Fatalf("%d, %v", n, err)
		}
	}
	var generic, custom int
	if err := db.QueryRowContext(t.Context(), "SELECT generic_plans, custom_plans FROM pg_prepared_statements").Scan(&generic, &custom); err != nil || generic != 0 || custom != 7 {
		t.Errorf("generic %d, custom %d plans, %v", generic, custom, err)
	}
}

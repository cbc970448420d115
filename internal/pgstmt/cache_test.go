package pgstmt_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"
)

const sel = "SELECT * FROM m WHERE k = $1"

// columns runs sel for k=1 and returns how many columns came back.
func columns(ctx context.Context, q querier) (int, error) {
	rows, err := q.QueryContext(ctx, sel, 1)
	if err != nil {
		return 0, err
	}
	got, err := scanAll(rows)
	if err != nil {
		return 0, err
	}
	if len(got) != 1 {
		return 0, fmt.Errorf("%d rows", len(got))
	}
	return len(got[0]), nil
}

// TestReuse: the first use of a query goes unnamed, the second prepares it, later ones reuse
// it, also across the pool's session resets (a pool of one connection, given back each time).
func TestReuse(t *testing.T) {
	db, _ := newDB(t, 128)
	db.SetMaxOpenConns(1)
	mustExec(t, db, "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
	mustExec(t, db, "INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')")
	pid := backendPID(t, db)
	for i, want := range []string{"a", "b", "c", "a", "b"} {
		var v string
		if err := db.QueryRowContext(t.Context(), "SELECT v FROM t WHERE k = $1", i%3+1).Scan(&v); err != nil || v != want {
			t.Fatalf("run %d: %q, %v", i, v, err)
		}
	}
	for range 3 {
		mustExec(t, db, "UPDATE t SET v = $1 WHERE k = $2", "x", 3)
	}
	got := prepared(t, db)
	want := map[string]int64{"SELECT v FROM t WHERE k = $1": 4, "UPDATE t SET v = $1 WHERE k = $2": 2}
	if !maps.Equal(got, want) {
		t.Errorf("prepared %v, want %v", got, want)
	}
	if p := backendPID(t, db); p != pid {
		t.Errorf("the session changed: %d then %d", pid, p)
	}
}

// TestNoArgs: statements without arguments, several in one string, go to lib/pq's simple
// protocol and are never prepared.
func TestNoArgs(t *testing.T) {
	db, _ := newDB(t, 128)
	c := pin(t, db)
	mustExec(t, c, "CREATE TABLE t (k INTEGER PRIMARY KEY); INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)")
	for range 3 {
		var n int
		if err := c.QueryRowContext(t.Context(), "SELECT count(*) FROM t").Scan(&n); err != nil || n != 2 {
			t.Fatalf("count %d, %v", n, err)
		}
		mustExec(t, c, "UPDATE t SET k = k + 10; UPDATE t SET k = k - 10")
	}
	if got := prepared(t, c); len(got) != 0 {
		t.Errorf("prepared %v", got)
	}
}

// TestCapacity: the cache holds the capacity's number of statements, least recently used out;
// 0 turns it off.
func TestCapacity(t *testing.T) {
	tests := []struct {
		capacity int
		uses     []int // query i is "SELECT $1::int + i"
		want     []int
	}{
		{3, []int{1, 1, 2, 2, 3, 3, 4, 4, 5, 5}, []int{3, 4, 5}},
		{3, []int{1, 1, 2, 2, 3, 3, 1, 4, 4}, []int{1, 3, 4}},
		{1, []int{1, 1, 2, 2}, []int{2}},
		{0, []int{1, 1, 1, 2, 2}, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d %v", tt.capacity, tt.uses), func(t *testing.T) {
			db, _ := newDB(t, tt.capacity)
			c := pin(t, db)
			for _, i := range tt.uses {
				var n int
				if err := c.QueryRowContext(t.Context(), fmt.Sprintf("SELECT $1::int + %d", i), 1).Scan(&n); err != nil || n != i+1 {
					t.Fatalf("query %d: %d, %v", i, n, err)
				}
			}
			var want []string
			for _, i := range tt.want {
				want = append(want, fmt.Sprintf("SELECT $1::int + %d", i))
			}
			if got := slices.Sorted(maps.Keys(prepared(t, c))); !slices.Equal(got, want) {
				t.Errorf("prepared %q, want %q", got, want)
			}
		})
	}
}

// TestSchemaChange: a statement prepared before a migration added a column runs afterwards
// with the new column. A change made through the pool (any connection, in a transaction or not)
// is seen before the next query, also inside a transaction; one made by another program is
// found by the server's "cached plan must not change result type" (or, for a changed column
// type, a type error): outside a transaction the query runs again unprepared, inside one the
// transaction fails once and the statement is gone for the next.
func TestSchemaChange(t *testing.T) {
	type env struct {
		db, plain *sql.DB
		c         *sql.Conn
	}
	addColumn := "ALTER TABLE m ADD COLUMN b TEXT DEFAULT 'x'"
	tests := []struct {
		name    string
		change  func(t *testing.T, e env)
		inTx    bool
		cols    int
		wantErr pqerror.Code
	}{
		{"same connection", func(t *testing.T, e env) { mustExec(t, e.c, addColumn) }, true, 3, ""},
		{"other connection of the pool", func(t *testing.T, e env) {
			other := pin(t, e.db)
			mustExec(t, other, addColumn)
		}, true, 3, ""},
		{"in a transaction of the pool", func(t *testing.T, e env) {
			tx, err := e.db.BeginTx(t.Context(), nil)
			if err != nil {
				t.Fatal(err)
			}
			mustExec(t, tx, "ALTER TABLE m ADD COLUMN b TEXT")
			mustExec(t, tx, "ALTER TABLE m ADD COLUMN c TEXT")
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
		}, true, 4, ""},
		{"another program", func(t *testing.T, e env) { mustExec(t, e.plain, addColumn) }, false, 3, ""},
		{"another program, column type", func(t *testing.T, e env) {
			mustExec(t, e.plain, "ALTER TABLE m ALTER COLUMN k TYPE TEXT")
		}, false, 2, ""},
		{"another program, then a transaction", func(t *testing.T, e env) { mustExec(t, e.plain, addColumn) }, true, 3, pqerror.FeatureNotSupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, plain := newDB(t, 128)
			mustExec(t, plain, "CREATE TABLE m (k INTEGER PRIMARY KEY, a TEXT); INSERT INTO m VALUES (1, 'a')")
			c := pin(t, db)
			for range 2 {
				if n, err := columns(t.Context(), c); err != nil || n != 2 {
					t.Fatalf("before: %d columns, %v", n, err)
				}
			}
			if got := prepared(t, c); got[sel] != 1 {
				t.Fatalf("not prepared: %v", got)
			}
			tt.change(t, env{db, plain, c})
			var q querier = c
			var tx *sql.Tx
			if tt.inTx {
				var err error
				if tx, err = c.BeginTx(t.Context(), nil); err != nil {
					t.Fatal(err)
				}
				q = tx
			}
			n, err := columns(t.Context(), q)
			if tt.wantErr != "" {
				if pe := pq.As(err, tt.wantErr); pe == nil {
					t.Fatalf("err = %v, want %s", err, tt.wantErr)
				}
				if err := tx.Rollback(); err != nil {
					t.Fatal(err)
				}
				q, tx = c, nil
				n, err = columns(t.Context(), q)
			}
			if err != nil || n != tt.cols {
				t.Fatalf("after: %d columns, %v; want %d", n, err, tt.cols)
			}
			if tx != nil {
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			for range 2 {
				if n, err := columns(t.Context(), c); err != nil || n != tt.cols {
					t.Fatalf("later: %d columns, %v", n, err)
				}
			}
			if got := prepared(t, c); got[sel] == 0 {
				t.Errorf("not prepared again: %v", got)
			}
		})
	}
}

// TestOwnChangeRolledBack: a transaction adds a column and reads it through a statement
// prepared before; after its rollback the statement returns the old columns.
func TestOwnChangeRolledBack(t *testing.T) {
	db, _ := newDB(t, 128)
	c := pin(t, db)
	mustExec(t, c, "CREATE TABLE m (k INTEGER PRIMARY KEY, a TEXT); INSERT INTO m VALUES (1, 'a')")
	for range 2 {
		if _, err := columns(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := c.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, tx, "ALTER TABLE m ADD COLUMN b TEXT")
	for range 3 {
		if n, err := columns(t.Context(), tx); err != nil || n != 3 {
			t.Fatalf("in the transaction: %d columns, %v", n, err)
		}
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if n, err := columns(t.Context(), c); err != nil || n != 2 {
			t.Fatalf("after the rollback: %d columns, %v", n, err)
		}
	}
}

// TestTransactions: statements are per session, not per transaction: one prepared in a
// transaction that rolls back is used after it; an error of a cached statement aborts the
// transaction as lib/pq's would, and the statement stays usable after the rollback.
func TestTransactions(t *testing.T) {
	const ins = "INSERT INTO u (k) VALUES ($1)"
	db, _ := newDB(t, 128)
	c := pin(t, db)
	mustExec(t, c, "CREATE TABLE u (k INTEGER PRIMARY KEY)")

	tx, err := c.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, tx, ins, 1)
	mustExec(t, tx, ins, 2) // prepared here
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	mustExec(t, c, ins, 1)
	if got := prepared(t, c); got[ins] != 2 {
		t.Fatalf("after the rollback: %v", got)
	}

	tx, err = c.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, tx, ins, 2)
	if _, err := tx.ExecContext(t.Context(), ins, 1); pq.As(err, pqerror.UniqueViolation) == nil {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := tx.ExecContext(t.Context(), ins, 3); pq.As(err, pqerror.InFailedSQLTransaction) == nil {
		t.Fatalf("after the error: %v", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	mustExec(t, c, ins, 2)
	var n int
	if err := c.QueryRowContext(t.Context(), "SELECT count(*) FROM u").Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d rows, %v", n, err)
	}
	// Planned 5 times: the first use went unnamed, the one in the aborted transaction was
	// refused before planning.
	if got := prepared(t, c); got[ins] != 5 {
		t.Errorf("statement not kept: %v", got)
	}
}

// TestQueryInProgress: a query sent while rows of the connection are open is refused with
// lib/pq's error for it, and the connection works once they are closed. (lib/pq v1.12.3 alone
// sends it: its guard is reset by the ReadyForQuery after the Parse, and the query fails with
// "unexpected Parse response" on a connection then out of step.)
func TestQueryInProgress(t *testing.T) {
	const upd = "UPDATE t SET k = k WHERE k = $1"
	db, _ := newDB(t, 128)
	mustExec(t, db, "CREATE TABLE t (k INTEGER PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 1000)")
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	for range 2 {
		mustExec(t, tx, upd, 1)
	}
	for _, query := range []string{"SELECT k FROM t WHERE k > $1", "SELECT k FROM t WHERE k > $1", "SELECT k FROM t"} {
		var args []any
		if strings.Contains(query, "$1") {
			args = []any{0}
		}
		rows, err := tx.QueryContext(t.Context(), query, args...)
		if err != nil {
			t.Fatal(err)
		}
		rows.Next()
		for _, q := range []string{upd, "SELECT 1"} {
			_, err = tx.ExecContext(t.Context(), q, args...)
			if err == nil || !strings.Contains(err.Error(), "already a query being processed") {
				t.Fatalf("%s while rows are open: %v", q, err)
			}
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		mustExec(t, tx, upd, 1)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestCancel: a cancelled query ends with lib/pq's error and the session stays, statements and
// all; the cancel request reaches no later query.
func TestCancel(t *testing.T) {
	const sleep = "SELECT $1::int FROM pg_sleep($2)"
	db, _ := newDB(t, 128)
	c := pin(t, db)
	pid := backendPID(t, c)
	for range 2 {
		mustExec(t, c, sleep, 1, 0)
	}
	for range 3 {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		start := time.Now()
		_, err := c.ExecContext(ctx, sleep, 1, 5)
		cancel()
		if pq.As(err, pqerror.QueryCanceled) == nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("cancelled query: %v", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("cancel took %v", d)
		}
		for i := range 30 {
			var n int
			if err := c.QueryRowContext(t.Context(), sleep, i, 0).Scan(&n); err != nil || n != i {
				t.Fatalf("query %d after the cancel: %d, %v", i, n, err)
			}
		}
	}
	if p := backendPID(t, c); p != pid {
		t.Errorf("the session changed: %d then %d", pid, p)
	}
	if got := prepared(t, c); got[sleep] != 1+3+90 {
		t.Errorf("prepared %v", got)
	}
}

// TestCancelRows: a context cancelled while the rows of a cached statement are read ends them
// (database/sql closes the rows, lib/pq sends the cancel request) and the session goes on.
func TestCancelRows(t *testing.T) {
	const series = "SELECT i FROM generate_series(1, $1::int) i"
	db, _ := newDB(t, 128)
	c := pin(t, db)
	pid := backendPID(t, c)
	for range 2 {
		mustExec(t, c, series, 1)
	}
	for range 3 {
		ctx, cancel := context.WithCancel(t.Context())
		rows, err := c.QueryContext(ctx, series, 2_000_000)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 1000 && rows.Next(); i++ {
		}
		cancel()
		for rows.Next() {
		}
		if err := rows.Err(); err == nil {
			t.Fatal("2 million rows read despite the cancel")
		}
		_ = rows.Close()
		for i := range 20 {
			var n int
			if err := c.QueryRowContext(t.Context(), "SELECT count(*) FROM generate_series(1, $1::int)", i).Scan(&n); err != nil || n != i {
				t.Fatalf("query %d after the cancel: %d, %v", i, n, err)
			}
		}
	}
	if p := backendPID(t, c); p != pid {
		t.Errorf("the session changed: %d then %d", pid, p)
	}
}

// TestTerminated: a session the server ended (its statements gone with it) is reported as bad,
// and database/sql runs the query again on a new connection, which prepares it anew.
func TestTerminated(t *testing.T) {
	const q = "SELECT $1::int * 2"
	db, plain := newDB(t, 128)
	db.SetMaxOpenConns(1)
	for range 2 {
		mustExec(t, db, q, 1)
	}
	pid := backendPID(t, db)
	mustExec(t, plain, "SELECT pg_terminate_backend($1)", pid)
	time.Sleep(100 * time.Millisecond)
	for i := range 3 {
		var n int
		if err := db.QueryRowContext(t.Context(), q, i).Scan(&n); err != nil || n != 2*i {
			t.Fatalf("after the end of the session: %d, %v", n, err)
		}
	}
	if p := backendPID(t, db); p == pid {
		t.Fatal("same session")
	}
	if got := prepared(t, db); got[q] != 2 {
		t.Errorf("prepared %v", got)
	}
}

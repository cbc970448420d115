package deploy

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"go.mau.fi/util/dbutil"
)

func TestTuneDatabase(t *testing.T) {
	tests := []struct {
		name     string
		in       dbutil.PoolConfig
		wantURI  string
		wantIdle int
		changes  int
	}{
		{"sqlite file with params", dbutil.PoolConfig{Type: "sqlite3-fk-wal", URI: "file:x.db?_txlock=immediate", MaxOpenConns: 5, MaxIdleConns: 1},
			"file:x.db?_txlock=immediate&_stmt_cache_size=128", 5, 2},
		{"sqlite raw path", dbutil.PoolConfig{Type: "sqlite3-fk-wal", URI: "x.db", MaxOpenConns: 1, MaxIdleConns: 1},
			"x.db?_stmt_cache_size=128", 1, 1},
		{"sqlite cache set by the admin", dbutil.PoolConfig{Type: "sqlite3-fk-wal", URI: "file:x.db?_stmt_cache_size=7", MaxOpenConns: 5, MaxIdleConns: 5},
			"file:x.db?_stmt_cache_size=7", 5, 0},
		{"postgres", dbutil.PoolConfig{Type: "postgres", URI: "postgres://u@h/db?sslmode=disable", MaxOpenConns: 5, MaxIdleConns: 2},
			"postgres://u@h/db?sslmode=disable", 5, 1},
		{"unlimited open conns", dbutil.PoolConfig{Type: "postgres", URI: "postgres://u@h/db", MaxOpenConns: 0, MaxIdleConns: 2},
			"postgres://u@h/db", 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.in
			changes := TuneDatabase(&c)
			if c.URI != tt.wantURI || c.MaxIdleConns != tt.wantIdle || len(changes) != tt.changes {
				t.Errorf("got uri %q idle %d changes %q; want %q %d %d", c.URI, c.MaxIdleConns, changes, tt.wantURI, tt.wantIdle, tt.changes)
			}
		})
	}
}

// TestTuneDatabaseOpens checks that mattn/go-sqlite3 accepts the tuned URI and that queries work
// through the cache (a statement taken from it and run again with other arguments).
func TestTuneDatabaseOpens(t *testing.T) {
	c := dbutil.PoolConfig{Type: "sqlite3-fk-wal", URI: "file:" + filepath.Join(t.TempDir(), "db.sqlite") + "?_txlock=immediate", MaxOpenConns: 2, MaxIdleConns: 1}
	TuneDatabase(&c)
	db, err := dbutil.NewWithDialect(c.URI, c.Type)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ctx := context.Background()
	if _, err := db.Exec(ctx, "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)"); err != nil {
		t.Fatal(err)
	}
	for i, v := range []string{"a", "b", "c"} {
		if _, err := db.Exec(ctx, "INSERT INTO t (k, v) VALUES ($1, $2)", i, v); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for i := range 3 {
		var v string
		if err := db.QueryRow(ctx, "SELECT v FROM t WHERE k=$1", i).Scan(&v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("got %v", got)
	}
}

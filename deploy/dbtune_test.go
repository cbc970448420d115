package deploy

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"go.mau.fi/util/dbutil"

	"github.com/mxomemo/xmpp-bridge/internal/pgstmt"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

func TestTuneDatabase(t *testing.T) {
	tests := []struct {
		name     string
		in       dbutil.PoolConfig
		wantType string
		wantURI  string
		wantIdle int
		changes  int
	}{
		{"sqlite file with params", dbutil.PoolConfig{Type: "sqlite3-fk-wal", URI: "file:x.db?_txlock=immediate", MaxOpenConns: 5, MaxIdleConns: 1},
			"sqlite3-fk-wal", "file:x.db?_txlock=immediate&_stmt_cache_size=128", 5, 2},
		{"sqlite raw path", dbutil.PoolConfig{Type: "sqlite3-fk-wal", URI: "x.db", MaxOpenConns: 1, MaxIdleConns: 1},
			"sqlite3-fk-wal", "x.db?_stmt_cache_size=128", 1, 1},
		{"sqlite cache set by the admin", dbutil.PoolConfig{Type: "sqlite3-fk-wal", URI: "file:x.db?_stmt_cache_size=7", MaxOpenConns: 5, MaxIdleConns: 5},
			"sqlite3-fk-wal", "file:x.db?_stmt_cache_size=7", 5, 0},
		{"postgres", dbutil.PoolConfig{Type: "postgres", URI: "postgres://u@h/db?sslmode=disable", MaxOpenConns: 5, MaxIdleConns: 2},
			pgstmt.DriverName, "postgres://u@h/db?sslmode=disable", 5, 2},
		{"postgres capacity set by the admin", dbutil.PoolConfig{Type: "postgres", URI: "postgres://u@h/db?statement_cache_capacity=16", MaxOpenConns: 5, MaxIdleConns: 5},
			pgstmt.DriverName, "postgres://u@h/db?statement_cache_capacity=16", 5, 1},
		{"postgres cache off", dbutil.PoolConfig{Type: "postgres", URI: "postgres://u@h/db?sslmode=disable&statement_cache_capacity=0", MaxOpenConns: 5, MaxIdleConns: 5},
			"postgres", "postgres://u@h/db?sslmode=disable", 5, 1},
		{"postgres capacity wrong", dbutil.PoolConfig{Type: "postgres", URI: "postgres://u@h/db?statement_cache_capacity=x", MaxOpenConns: 5, MaxIdleConns: 5},
			pgstmt.DriverName, "postgres://u@h/db?statement_cache_capacity=x", 5, 0},
		{"postgres driver set by the admin", dbutil.PoolConfig{Type: pgstmt.DriverName, URI: "postgres://u@h/db", MaxOpenConns: 5, MaxIdleConns: 5},
			pgstmt.DriverName, "postgres://u@h/db", 5, 0},
		{"unlimited open conns", dbutil.PoolConfig{Type: "postgres", URI: "postgres://u@h/db", MaxOpenConns: 0, MaxIdleConns: 2},
			pgstmt.DriverName, "postgres://u@h/db", 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.in
			changes := TuneDatabase(&c)
			if c.Type != tt.wantType || c.URI != tt.wantURI || c.MaxIdleConns != tt.wantIdle || len(changes) != tt.changes {
				t.Errorf("got %s %q idle %d changes %q; want %s %q %d %d", c.Type, c.URI, c.MaxIdleConns, changes, tt.wantType, tt.wantURI, tt.wantIdle, tt.changes)
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

// TestTuneDatabaseOpensPostgres checks that the tuned PostgreSQL section opens through dbutil
// as mxmain opens it, that queries and transactions work, and that statements are prepared
// once per connection unless the URI turns the cache off.
func TestTuneDatabaseOpensPostgres(t *testing.T) {
	pg := testenv.StartPostgres(t)
	tests := []struct {
		name, db, param string
		wantType        string
		wantPrepared    int
	}{
		{"default", "tune_default", "", pgstmt.DriverName, 2},
		{"off", "tune_off", "&statement_cache_capacity=0", "postgres", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dbutil.PoolConfig{Type: "postgres", URI: pg.CreateDatabase(t, tt.db) + tt.param, MaxOpenConns: 1, MaxIdleConns: 1}
			TuneDatabase(&c)
			if c.Type != tt.wantType {
				t.Fatalf("type %q", c.Type)
			}
			db, err := dbutil.NewFromConfig("test", dbutil.Config{PoolConfig: c}, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			ctx := t.Context()
			if _, err := db.Exec(ctx, "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)"); err != nil {
				t.Fatal(err)
			}
			for i, v := range []string{"a", "b", "c"} {
				err := db.DoTxn(ctx, nil, func(ctx context.Context) error {
					_, err := db.Exec(ctx, "INSERT INTO t (k, v) VALUES ($1, $2)", i, v)
					return err
				})
				if err != nil {
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
			var n int
			if err := db.QueryRow(ctx, "SELECT count(*) FROM pg_prepared_statements").Scan(&n); err != nil || n != tt.wantPrepared {
				t.Errorf("%d statements prepared (%v), want %d", n, err, tt.wantPrepared)
			}
		})
	}
}

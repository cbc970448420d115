package pgstmt_test

import (
	"database/sql"
	"syscall"
	"testing"
	"time"
)

// procCPU is this process's user+system CPU time: the client side of the queries (the server
// is another process).
func procCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkQuery compares lib/pq alone with the driver on a key look-up and an upsert, one
// connection: wall time, the client's CPU time (cpu-µs/op) and allocations per query.
//
//	go test -tags goolm -run '^$' -bench Query -benchmem ./internal/pgstmt/
func BenchmarkQuery(b *testing.B) {
	for _, q := range []struct{ name, query string }{
		{"select", "SELECT k, v, b FROM t WHERE k = $1"},
		{"upsert", "INSERT INTO t (k, v) VALUES ($1, 'x') ON CONFLICT (k) DO UPDATE SET v = excluded.v"},
	} {
		for _, drv := range []string{"lib/pq", "pgstmt"} {
			b.Run(q.name+"/"+drv, func(b *testing.B) {
				db, plain := newBenchDB(b)
				if drv == "lib/pq" {
					db = plain
				}
				db.SetMaxOpenConns(1)
				ctx := b.Context()
				for i := range 2 {
					if _, err := db.ExecContext(ctx, q.query, i); err != nil && q.name == "upsert" {
						b.Fatal(err)
					}
				}
				b.ReportAllocs()
				cpu0 := procCPU(b)
				b.ResetTimer()
				for i := range b.N {
					rows, err := db.QueryContext(ctx, q.query, i%100)
					if err != nil {
						b.Fatal(err)
					}
					for rows.Next() {
					}
					if err := rows.Close(); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64((procCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
			})
		}
	}
}

func newBenchDB(b *testing.B) (db, plain *sql.DB) {
	b.Helper()
	db, plain = newDB(b, 128)
	mustExec(b, plain, "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT, b BYTEA); INSERT INTO t SELECT i, 'v' || i, '\\x0102' FROM generate_series(0, 99) i")
	return db, plain
}

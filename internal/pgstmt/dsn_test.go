package pgstmt_test

import (
	"testing"

	"github.com/mxomemo/xmpp-bridge/internal/pgstmt"
)

func TestSplitDSN(t *testing.T) {
	tests := []struct {
		name, dsn string
		capacity  int
		pqDSN     string
		wantErr   bool
	}{
		{"url without", "postgres://u:p@h:5432/db?sslmode=disable", pgstmt.DefaultCapacity, "postgres://u:p@h:5432/db?sslmode=disable", false},
		{"url with", "postgres://u@h/db?sslmode=disable&statement_cache_capacity=7", 7, "postgres://u@h/db?sslmode=disable", false},
		{"url off", "postgresql://u@h/db?statement_cache_capacity=0", 0, "postgresql://u@h/db", false},
		{"url bad", "postgres://u@h/db?statement_cache_capacity=many", 0, "", true},
		{"url negative", "postgres://u@h/db?statement_cache_capacity=-1", 0, "", true},
		{"kv without", "host=h dbname=db sslmode=disable", pgstmt.DefaultCapacity, "host=h dbname=db sslmode=disable", false},
		{"kv with", "host=h statement_cache_capacity=16 dbname=db", 16, "host=h dbname=db", false},
		{"kv quoted first", "statement_cache_capacity = '0' host=h", 0, "host=h", false},
		{"kv bad", "host=h statement_cache_capacity=x", 0, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			capacity, pqDSN, err := pgstmt.SplitDSN(tt.dsn)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && (capacity != tt.capacity || pqDSN != tt.pqDSN) {
				t.Errorf("got %d %q, want %d %q", capacity, pqDSN, tt.capacity, tt.pqDSN)
			}
		})
	}
}

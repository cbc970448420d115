package bridge

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

func TestSyncPacer(t *testing.T) {
	const gap = 400 * time.Millisecond
	cases := []struct {
		name, method, path string
		paced              bool
	}{
		{"v3 sync", http.MethodGet, "/_matrix/client/v3/sync", true},
		{"r0 sync", http.MethodGet, "/_matrix/client/r0/sync", true},
		{"send", http.MethodPut, "/_matrix/client/v3/rooms/%21r:localhost/send/m.room.encrypted/t1", false},
		{"sendToDevice", http.MethodPut, "/_matrix/client/v3/sendToDevice/m.room.encrypted/t2", false},
		{"keys query", http.MethodPost, "/_matrix/client/v3/keys/query", false},
		{"media", http.MethodGet, "/_matrix/client/v1/media/download/localhost/sync", false},
		{"not client API", http.MethodGet, "/sync", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var starts []time.Time
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				starts = append(starts, time.Now())
				mu.Unlock()
				_, _ = w.Write([]byte(`{}`))
			}))
			defer srv.Close()
			cli := &http.Client{Transport: &syncPacer{next: http.DefaultTransport, min: gap}}
			for range 3 {
				req, err := http.NewRequestWithContext(t.Context(), tc.method, srv.URL+tc.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := cli.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				_ = resp.Body.Close()
			}
			mu.Lock()
			defer mu.Unlock()
			if len(starts) != 3 {
				t.Fatalf("server saw %d requests, want 3", len(starts))
			}
			for i := 1; i < len(starts); i++ {
				d := starts[i].Sub(starts[i-1])
				if tc.paced && d < gap {
					t.Errorf("request %d started %v after the previous one, want ≥ %v", i, d, gap)
				}
				if !tc.paced && d >= gap {
					t.Errorf("request %d waited %v, want no pacing", i, d)
				}
			}
		})
	}
}

// A paced /sync gives up its wait when its context ends (the crypto helper's Stop).
func TestSyncPacerCancel(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{}`)) }))
	defer srv.Close()
	p := &syncPacer{next: http.DefaultTransport, min: time.Hour, last: time.Now()}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/_matrix/client/v3/sync", nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp, err := p.RoundTrip(req)
	if resp != nil {
		_ = resp.Body.Close()
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("RoundTrip returned after %v, want soon after the context ended", d)
	}
}

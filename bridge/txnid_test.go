package bridge

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTxnTransport(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.EscapedPath())
		mu.Unlock()
	}))
	defer srv.Close()
	client := &http.Client{Transport: txnTransport{next: http.DefaultTransport}}
	put := func(ctx context.Context, path string) string {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, srv.URL+path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		mu.Lock()
		defer mu.Unlock()
		return paths[len(paths)-1]
	}
	const send = "/_matrix/client/v3/rooms/%21room%3Alocalhost/send/m.room.message/"
	txn := func(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

	first := withTxnSeed(context.Background(), "bob@localhost\x00m1")
	// Sends before the event's own conversion (backfill of a new portal) are not the event's.
	backfill := put(first, send+"random0")
	armTxnSeed(first)
	a := put(first, send+"random1")
	b := put(first, send+"random2")
	retry := put(first, send+"random1")
	// After a restart the same remote message is handled again, with new random ids.
	again := withTxnSeed(context.Background(), "bob@localhost\x00m1")
	armTxnSeed(again)
	a2 := put(again, send+"random3")
	b2 := put(again, send+"random4")
	armed := func(base string) context.Context {
		ctx := withTxnSeed(context.Background(), base)
		armTxnSeed(ctx)
		return ctx
	}
	other := put(armed("bob@localhost\x00m2"), send+"random5")
	enc := put(armed("bob@localhost\x00m1"), "/_matrix/client/v3/rooms/%21room%3Alocalhost/send/m.room.encrypted/random6")
	plain := put(context.Background(), send+"random7")
	state := put(first, "/_matrix/client/v3/rooms/%21room%3Alocalhost/state/m.room.name/")

	tests := []struct {
		name string
		ok   bool
	}{
		{"the room and event type are kept", strings.HasPrefix(a, send) && strings.HasPrefix(enc, "/_matrix/client/v3/rooms/%21room%3Alocalhost/send/m.room.encrypted/")},
		{"the id is replaced", strings.HasPrefix(txn(a), "mxomemo.")},
		{"sends before the conversion keep their random id", txn(backfill) == "random0"},
		{"parts of one message differ", txn(a) != txn(b)},
		{"a retry keeps its id", txn(retry) == txn(a)},
		{"the same message after a restart gets the same ids", txn(a2) == txn(a) && txn(b2) == txn(b)},
		{"another message gets another id", txn(other) != txn(a)},
		{"sends without a seed keep their random id", txn(plain) == "random7"},
		{"other requests are untouched", strings.HasSuffix(state, "/state/m.room.name/")},
	}
	for _, tc := range tests {
		if !tc.ok {
			t.Errorf("%s: paths %q", tc.name, paths)
		}
	}
}

// TestTxnTransportRetries: a message send that meets a failing homeserver is retried, with the
// same transaction id and body, until it goes through.
func TestTxnTransportRetries(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.URL.EscapedPath()+" "+string(b))
		n := len(seen)
		mu.Unlock()
		if n < 3 {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	defer srv.Close()
	client := &http.Client{Transport: txnTransport{next: http.DefaultTransport}}
	ctx := withTxnSeed(context.Background(), "bob@localhost\x00m1")
	armTxnSeed(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, srv.URL+"/_matrix/client/v3/rooms/%21r%3Ax/send/m.room.message/random1", strings.NewReader(`{"body":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(seen) != 3 || seen[0] != seen[2] || !strings.HasSuffix(seen[0], ` {"body":"hi"}`) {
		t.Fatalf("status %d after %q", resp.StatusCode, seen)
	}
}

// TestHomeserverAway checks which send outcomes are retried: what a homeserver restart or a proxy
// in front of it produces, and not the answers that would fail the same way again.
func TestHomeserverAway(t *testing.T) {
	// A port nothing listens on: connection refused.
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	// A server that closes the connection without answering: EOF.
	hangup := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer hangup.Close()
	// A server slower than the client's timeout.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	status := func(code int) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }))
	}
	cases := []struct {
		name string
		url  string
		away bool
	}{
		{"connection refused", closedURL, true},
		{"EOF", hangup.URL, true},
		{"timeout", slow.URL, true},
		{"500", "500", true},
		{"502", "502", true},
		{"503", "503", true},
		{"504", "504", true},
		{"429", "429", true},
		{"200", "200", false},
		{"400", "400", false},
		{"403", "403", false},
		{"404", "404", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			url := c.url
			if code, err := strconv.Atoi(c.url); err == nil {
				srv := status(code)
				defer srv.Close()
				url = srv.URL
			}
			client := &http.Client{Timeout: 500 * time.Millisecond}
			resp, err := client.Get(url)
			if resp != nil {
				defer resp.Body.Close()
			}
			if got := homeserverAway(resp, err); got != c.away {
				t.Errorf("homeserverAway = %v, want %v (response %v, error %v)", got, c.away, resp, err)
			}
		})
	}
}

// TestTxnTransportShutdownForbidden: Dendrite's 403 "appservice has not registered this user"
// while it shuts down is retried, for a while only; other 403s are not.
func TestTxnTransportShutdownForbidden(t *testing.T) {
	defer func(d time.Duration) { forbiddenRetryMax = d }(forbiddenRetryMax)
	forbiddenRetryMax = 2 * time.Second
	const notRegistered = `{"errcode":"M_FORBIDDEN","error":"appservice has not registered this user"}`
	cases := []struct {
		name      string
		forbidden int    // how many first requests get 403 with body
		body      string // of the 403
		requests  int
		status    int
	}{
		{"shutdown 403 then 200", 1, notRegistered, 2, http.StatusOK},
		{"shutdown 403 that lasts", 100, notRegistered, 3, http.StatusForbidden}, // at 0, 1 and 3 s,
		{"other 403", 100, `{"errcode":"M_FORBIDDEN","error":"You are not invited to this room."}`, 1, http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var mu sync.Mutex
			n := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				n++
				k := n
				mu.Unlock()
				if k <= c.forbidden {
					w.WriteHeader(http.StatusForbidden)
					_, _ = io.WriteString(w, c.body)
				}
			}))
			defer srv.Close()
			client := &http.Client{Transport: txnTransport{next: http.DefaultTransport}}
			ctx := withTxnSeed(context.Background(), "bob@localhost\x00m1")
			armTxnSeed(ctx)
			req, err := http.NewRequestWithContext(ctx, http.MethodPut, srv.URL+"/_matrix/client/v3/rooms/%21r%3Ax/send/m.room.message/random1", strings.NewReader(`{"body":"hi"}`))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status || n != c.requests {
				t.Fatalf("status %d after %d requests, want %d after %d", resp.StatusCode, n, c.status, c.requests)
			}
			if c.status == http.StatusForbidden && string(body) != c.body {
				t.Errorf("the caller got body %q, want %q", body, c.body)
			}
		})
	}
}

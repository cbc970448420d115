// Package assink is a minimal appservice sink: NOT a homeserver. It answers the few client-server
// API calls the bridge makes (versions, whoami, register, profile, createRoom, join, invite,
// state, send) with made-up IDs, records every m.room.message the bridge sends, and pushes
// appservice transactions to the bridge. It exists only for the bridge's throughput benchmark
// (BenchmarkSinkThroughput), to measure the bridge without a homeserver's cost; no test of
// behaviour may use it in place of Dendrite.
package assink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Received is one m.room.message the bridge sent.
type Received struct {
	Room, Sender, Body string
	At                 time.Time
}

// Sink is a running sink on 127.0.0.1.
type Sink struct {
	Domain, Bot string
	srv         *http.Server
	ln          net.Listener
	seq         atomic.Int64
	// Messages receives every m.room.message sent by the bridge (buffered; a full buffer blocks).
	Messages chan Received
	mu       sync.Mutex
	unknown  map[string]int
}

// Start listens on 127.0.0.1:port for domain, whose bridge bot is bot (an MXID).
func Start(port int, domain, bot string) (*Sink, error) {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return nil, fmt.Errorf("failed to listen: %w", err)
	}
	s := &Sink{Domain: domain, Bot: bot, ln: ln, Messages: make(chan Received, 100000), unknown: map[string]int{}}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Close stops the sink.
func (s *Sink) Close() { _ = s.srv.Close() }

// Unknown lists the calls the sink answered with an empty object, for diagnosis.
func (s *Sink) Unknown() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.unknown))
	for k, v := range s.unknown {
		out[k] = v
	}
	return out
}

func (s *Sink) id(prefix string) string {
	return fmt.Sprintf("%s%d:%s", prefix, s.seq.Add(1), s.Domain)
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Sink) serve(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	parts := strings.Split(strings.TrimPrefix(p, "/_matrix/client/"), "/")
	switch {
	case p == "/_matrix/client/versions":
		reply(w, 200, map[string]any{"versions": []string{"v1.4", "v1.11"}, "unstable_features": map[string]bool{}})
	case strings.HasSuffix(p, "/account/whoami"):
		user := r.URL.Query().Get("user_id")
		if user == "" {
			user = s.Bot
		}
		reply(w, 200, map[string]any{"user_id": user, "device_id": "SINK"})
	case strings.Contains(p, "/appservice/") && strings.HasSuffix(p, "/ping"):
		reply(w, 200, map[string]any{"duration_ms": 1})
	case strings.HasSuffix(p, "/register"):
		var req struct {
			Username string `json:"username"`
		}
		_ = json.Unmarshal(body, &req)
		reply(w, 200, map[string]any{"user_id": "@" + req.Username + ":" + s.Domain})
	case strings.HasSuffix(p, "/createRoom"):
		reply(w, 200, map[string]any{"room_id": s.id("!sink")})
	case len(parts) >= 3 && parts[1] == "join":
		reply(w, 200, map[string]any{"room_id": parts[2]})
	case len(parts) >= 4 && parts[1] == "rooms" && r.Method == http.MethodPost && (parts[3] == "join" || parts[3] == "invite" || parts[3] == "leave" || parts[3] == "kick" || parts[3] == "read_markers" || parts[3] == "receipt" || parts[3] == "redact"):
		reply(w, 200, map[string]any{"room_id": parts[2], "event_id": s.id("$sink")})
	case len(parts) >= 5 && parts[1] == "rooms" && parts[3] == "send":
		if parts[4] == "m.room.message" {
			var c struct {
				Body string `json:"body"`
			}
			_ = json.Unmarshal(body, &c)
			s.Messages <- Received{Room: parts[2], Sender: r.URL.Query().Get("user_id"), Body: c.Body, At: time.Now()}
		}
		reply(w, 200, map[string]any{"event_id": s.id("$sink")})
	case len(parts) >= 4 && parts[1] == "rooms" && parts[3] == "state" && r.Method == http.MethodPut:
		reply(w, 200, map[string]any{"event_id": s.id("$sink")})
	case len(parts) >= 4 && parts[1] == "rooms" && parts[3] == "state" && len(parts) == 4:
		reply(w, 200, []any{})
	case len(parts) >= 4 && parts[1] == "rooms" && parts[3] == "state":
		reply(w, 404, map[string]any{"errcode": "M_NOT_FOUND", "error": "sink has no state"})
	case len(parts) >= 4 && parts[1] == "rooms" && parts[3] == "joined_members":
		reply(w, 200, map[string]any{"joined": map[string]any{}})
	case len(parts) >= 4 && parts[1] == "rooms" && parts[3] == "members":
		reply(w, 200, map[string]any{"chunk": []any{}})
	case strings.Contains(p, "/account_data/") && r.Method == http.MethodGet:
		reply(w, 404, map[string]any{"errcode": "M_NOT_FOUND", "error": "none"})
	case strings.HasSuffix(p, "/media/config"):
		reply(w, 200, map[string]any{"m.upload.size": 104857600})
	case strings.HasSuffix(p, "/filter"):
		reply(w, 200, map[string]any{"filter_id": "1"})
	default:
		s.mu.Lock()
		s.unknown[r.Method+" "+p]++
		s.mu.Unlock()
		reply(w, 200, map[string]any{})
	}
}

// Event is a Matrix event pushed to the bridge.
type Event struct {
	Type      string         `json:"type"`
	RoomID    string         `json:"room_id"`
	Sender    string         `json:"sender"`
	EventID   string         `json:"event_id"`
	Timestamp int64          `json:"origin_server_ts"`
	Content   map[string]any `json:"content"`
}

// Push sends one appservice transaction with events to the bridge at asURL.
func (s *Sink) Push(ctx context.Context, client *http.Client, asURL, hsToken string, events []Event) error {
	raw, err := json.Marshal(map[string]any{"events": events})
	if err != nil {
		return err
	}
	txn := s.seq.Add(1)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, fmt.Sprintf("%s/_matrix/app/v1/transactions/sink%d", asURL, txn), bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+hsToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("failed to push a transaction: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("transaction: HTTP %d: %s", resp.StatusCode, b)
	}
	// Read to its end, or the connection is not reused: a homeserver keeps
	// its connection to the appservice, and a new one per transaction was
	// the bridge's work in the figures.
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// NewEventID makes a unique event ID.
func (s *Sink) NewEventID() string { return s.id("$m") }

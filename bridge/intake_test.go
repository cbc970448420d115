package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/mxomemo/xmpp-bridge/internal/testenv"
	"github.com/mxomemo/xmpp-bridge/migrations"
)

// intakeWorld plays the homeserver, bridgev2 and the XMPP server around
// the intake, and can crash the process at one named step.
type intakeWorld struct {
	t  *testing.T
	db *dbutil.Database

	mu sync.Mutex
	// wire is what reached the XMPP server: "room|xmpp id|body".
	wire []string
	// bridged are bridgev2's message rows (keyed by MXID).
	bridged map[id.EventID]bool
	crashAt string
	dead    bool
	// archive makes the server's archive answer for interrupted sends
	// (what reached the wire is archived); without it there is none.
	archive bool
	// acking: a send is written (inflight) and reaches the server (wire)
	// only when its acknowledgement is waited for, as with stream
	// management; a crash loses what is in flight, as the kernel's reset
	// of the connection does.
	acking   bool
	inflight []string
}

// archiveCheck is sendOnce's archive look-up for xmppID, or nil without
// an archive.
func (w *intakeWorld) archiveCheck(xmppID string) func(time.Time) (bool, error) {
	if !w.archive {
		return nil
	}
	return func(time.Time) (bool, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, line := range w.wire {
			if strings.Contains(line, "|"+xmppID+"|") {
				return true, nil
			}
		}
		return false, nil
	}
}

func openIntakeDB(t *testing.T, dialect, uri string) *dbutil.Database {
	t.Helper()
	raw, err := dbutil.NewWithDialect(uri, dialect)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	db := migrations.Child(raw, dbutil.ZeroLogger(zerolog.Nop()))
	if err := db.Upgrade(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

func (w *intakeWorld) crash(step string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dead || step == w.crashAt {
		w.dead = true
		return errIntakeCrash
	}
	return nil
}

// newIntake is one run of the process; crashAt "" never crashes.
func (w *intakeWorld) newIntake(crashAt string) *intake {
	w.mu.Lock()
	w.crashAt, w.dead = crashAt, false
	w.inflight = nil // the previous process's connection is gone
	w.mu.Unlock()
	in := newIntake(w.db, zerolog.Nop())
	in.crash = w.crash
	// The tests wait for the drains to exit (TestIntakeDrainStays has
	// them stay).
	in.idle = 0
	in.handled = func(_ context.Context, evt id.EventID) bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.bridged[evt]
	}
	// deliver is bridgev2 calling our HandleMatrixMessage, then storing
	// its message row.
	in.deliver = func(ctx context.Context, evt *event.Event) error {
		if err := w.crash("drained"); err != nil {
			return err
		}
		xmppID := intakeXMPPID(evt.ID)
		body := evt.Content.Raw["body"].(string)
		if _, err := in.sendOnce(ctx, evt.ID, xmppID, func() error {
			w.mu.Lock()
			defer w.mu.Unlock()
			line := fmt.Sprintf("%s|%s|%s", evt.RoomID, xmppID, body)
			if !w.acking {
				w.wire = append(w.wire, line)
				return nil
			}
			w.inflight = append(w.inflight, line)
			in.written(xmppID, func(context.Context) error {
				w.mu.Lock()
				defer w.mu.Unlock()
				w.wire = append(w.wire, w.inflight...)
				w.inflight = nil
				return nil
			})
			return nil
		}, w.archiveCheck(xmppID)); err != nil {
			return err
		}
		w.mu.Lock()
		w.bridged[evt.ID] = true
		w.mu.Unlock()
		return nil
	}
	// Runs of messages (intake_run.go): this bridgev2 handles each at
	// once, so there is nothing to wait for but a crash.
	in.dispatch = in.deliver
	in.barrier = func(context.Context, *event.Event) error { return w.crash("barrier") }
	return in
}

// transaction is what the homeserver sends: messages m0..m(n-1)
// alternating between two rooms.
func intakeTransaction(n int) []byte {
	evts := make([]map[string]any, n)
	for i := range evts {
		evts[i] = map[string]any{
			"event_id":         fmt.Sprintf("$m%d", i),
			"room_id":          fmt.Sprintf("!room%d:localhost", i%2),
			"sender":           "@alice:localhost",
			"type":             "m.room.message",
			"origin_server_ts": 1000 + i,
			"content":          map[string]any{"msgtype": "m.text", "body": fmt.Sprintf("m%d", i)},
		}
	}
	js, _ := json.Marshal(map[string]any{"events": evts})
	return js
}

func put(in *intake, txnID string, body []byte) int {
	req := httptest.NewRequest(http.MethodPut, "/_matrix/app/v1/transactions/"+txnID, strings.NewReader(string(body)))
	req.SetPathValue("txnID", txnID)
	rec := httptest.NewRecorder()
	in.ServeHTTP(rec, req)
	return rec.Code
}

// TestIntakeCrash kills the process between each pair of steps of the
// Matrix → XMPP path and restarts it on the same database, with the
// homeserver sending the transaction again when it got no answer (and once
// more anyway, as a late retry): every message reaches XMPP once, in
// order per room. A crash between the XMPP send and its record sends the
// stanza again under the same id (the one case the receiver deduplicates).
func TestIntakeCrash(t *testing.T) {
	dbs := map[string]func(t *testing.T) *dbutil.Database{
		"sqlite": func(t *testing.T) *dbutil.Database {
			return openIntakeDB(t, "sqlite3-fk-wal", "file:"+filepath.Join(t.TempDir(), "bridge.db")+"?_txlock=immediate")
		},
		"postgres": func(t *testing.T) *dbutil.Database {
			if testing.Short() {
				t.Skip("starts PostgreSQL")
			}
			pg := testenv.StartPostgres(t)
			return openIntakeDB(t, "postgres", pg.CreateDatabase(t, "bridgeintake"))
		},
	}
	cases := []struct {
		crashAt string
		// started: the intake was draining when the transaction came.
		started bool
		// resent: the same stanza id twice on the wire.
		resent bool
		// archive: the server archive is looked at for interrupted sends.
		archive bool
		// acking: sends reach the server when acknowledged (intake_ack.go).
		acking bool
	}{
		{crashAt: "", started: true},
		{crashAt: "stored", started: true},                 // stored → answered
		{crashAt: "never", started: false},                 // answered → drained
		{crashAt: "drained", started: true},                // drained → sending
		{crashAt: "sending", started: true},                // sending recorded → sent
		{crashAt: "sent", started: true, resent: true},     // sent → recorded, no archive
		{crashAt: "sent", started: true, archive: true},    // sent → recorded, found in the archive
		{crashAt: "sending", started: true, archive: true}, // not in the archive: sent
		{crashAt: "recorded", started: true},               // recorded → handled by bridgev2
		{crashAt: "handled", started: true},                // handled → done
		// Written but not yet the server's when the process dies: the
		// row stays "sent", the archive does not have it, it is sent
		// again (TestRoomKill lost such bursts when "sent" meant done).
		{crashAt: "", started: true, archive: true, acking: true},
		{crashAt: "acked", started: true, archive: true, acking: true},        // written → acknowledged
		{crashAt: "acknowledged", started: true, archive: true, acking: true}, // acknowledged → done
	}
	for dbName, open := range dbs {
		t.Run(dbName, func(t *testing.T) {
			db := open(t)
			for i, tc := range cases {
				for _, warm := range []bool{false, true} {
					name := "crash_at_" + tc.crashAt
					if warm {
						// The rooms' drains have read all their rows before the
						// transaction: its rows come to them from memory, and
						// its messages are stored "sending" (intake_fresh.go).
						name += "_warm"
					}
					if tc.archive {
						name += "_archive"
					}
					if tc.acking {
						name += "_acking"
					}
					t.Run(name, func(t *testing.T) {
						if _, err := db.Exec(context.Background(), `DELETE FROM matrix_intake`); err != nil {
							t.Fatal(err)
						}
						w := &intakeWorld{t: t, db: db, bridged: map[id.EventID]bool{}, archive: tc.archive, acking: tc.acking}
						n := 6
						if warm {
							// More than sendingAhead per room: the rest are
							// marked "sending" by the drain (intake_run.go).
							n = 2 * (sendingAhead + 4)
						}
						txn := intakeTransaction(n)
						txnID := fmt.Sprintf("t%d", i)

						ctx1, cancel1 := context.WithCancel(context.Background())
						first := w.newIntake(tc.crashAt)
						if tc.started {
							if err := first.start(ctx1); err != nil {
								t.Fatal(err)
							}
						}
						if warm {
							w.mu.Lock()
							w.crashAt = ""
							w.mu.Unlock()
							if code := put(first, txnID+"-warm", intakeWarmup(txnID)); code != http.StatusOK {
								t.Fatalf("warm-up transaction answered %d", code)
							}
							first.wait()
							w.mu.Lock()
							w.crashAt = tc.crashAt
							w.mu.Unlock()
						}
						answered := put(first, txnID, txn) == http.StatusOK
						first.wait()
						cancel1()
						if tc.crashAt == "stored" && answered {
							t.Fatal("transaction answered although the process died before answering")
						}
						if tc.crashAt != "" && tc.crashAt != "never" && !w.dead {
							t.Fatalf("the run never reached step %q", tc.crashAt)
						}

						ctx2, cancel2 := context.WithCancel(context.Background())
						defer cancel2()
						second := w.newIntake("")
						if err := second.start(ctx2); err != nil {
							t.Fatal(err)
						}
						if !answered {
							if code := put(second, txnID, txn); code != http.StatusOK {
								t.Fatalf("resent transaction answered %d", code)
							}
						}
						second.wait()
						// A late retry of the same transaction changes nothing.
						if code := put(second, txnID+"-retry", txn); code != http.StatusOK {
							t.Fatalf("late retry answered %d", code)
						}
						second.wait()

						checkIntakeWire(t, w.wire, n, tc.resent)
						var left int
						if err := db.QueryRow(context.Background(), `SELECT COUNT(*) FROM matrix_intake WHERE state<3 OR event_json IS NOT NULL`).Scan(&left); err != nil {
							t.Fatal(err)
						}
						if left != 0 {
							t.Errorf("%d intake rows not done after the restart", left)
						}
					})
				}
			}
		})
	}
}

// intakeWarmup is a transaction of one message to each room of
// intakeTransaction, with bodies that checkIntakeWire does not count.
func intakeWarmup(txnID string) []byte {
	evts := make([]map[string]any, 2)
	for i := range evts {
		evts[i] = map[string]any{
			"event_id": fmt.Sprintf("$w%d-%s", i, txnID), "room_id": fmt.Sprintf("!room%d:localhost", i),
			"sender": "@alice:localhost", "type": "m.room.message", "origin_server_ts": 900 + i,
			"content": map[string]any{"msgtype": "m.text", "body": fmt.Sprintf("w%d", i)},
		}
	}
	js, _ := json.Marshal(map[string]any{"events": evts})
	return js
}

// checkIntakeWire checks that each of the n messages reached XMPP once (or,
// with resent, at most twice under one id), in order per room.
func checkIntakeWire(t *testing.T, wire []string, n int, resent bool) {
	t.Helper()
	count := map[string]int{}
	ids := map[string]string{}
	last := map[string]int{}
	for _, line := range wire {
		parts := strings.SplitN(line, "|", 3)
		room, xmppID, body := parts[0], parts[1], parts[2]
		count[body]++
		if prev, ok := ids[body]; ok && prev != xmppID {
			t.Errorf("%s sent again under another id (%s, then %s)", body, prev, xmppID)
		}
		ids[body] = xmppID
		var k int
		_, _ = fmt.Sscanf(body, "m%d", &k)
		if prev, ok := last[room]; ok && k < prev {
			t.Errorf("%s out of order in %s after m%d", body, room, prev)
		}
		last[room] = k
	}
	dups := 0
	for i := 0; i < n; i++ {
		body := fmt.Sprintf("m%d", i)
		switch c := count[body]; {
		case c == 0:
			t.Errorf("%s lost", body)
		case c > 1:
			dups += c - 1
		}
	}
	if !resent && dups > 0 {
		t.Errorf("%d duplicates on the wire: %q", dups, wire)
	}
	if resent && dups != 1 {
		t.Errorf("want exactly the one interrupted message sent again under its id, got %d duplicates: %q", dups, wire)
	}
}

// TestIntakeOrderWhileDraining sends transactions while earlier ones are
// still being handed over: the room worker takes them in arrival order.
func TestIntakeOrderWhileDraining(t *testing.T) {
	db := openIntakeDB(t, "sqlite3-fk-wal", "file:"+filepath.Join(t.TempDir(), "bridge.db")+"?_txlock=immediate")
	w := &intakeWorld{t: t, db: db, bridged: map[id.EventID]bool{}}
	in := w.newIntake("")
	slow := in.deliver
	in.deliver = func(ctx context.Context, evt *event.Event) error {
		time.Sleep(2 * time.Millisecond)
		return slow(ctx, evt)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := in.start(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 40
	all := intakeTransaction(n)
	var parsed struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(all, &parsed); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 4 {
		js, _ := json.Marshal(map[string]any{"events": parsed.Events[i : i+4]})
		if code := put(in, fmt.Sprintf("t%d", i), js); code != http.StatusOK {
			t.Fatalf("transaction %d answered %d", i, code)
		}
	}
	in.wait()
	checkIntakeWire(t, w.wire, n, false)
}

// TestIntakeTransactionHandling checks the endpoint itself: the server
// token is required, a storage failure leaves the transaction unanswered,
// and what is not a timeline event goes on to the appservice.
func TestIntakeTransactionHandling(t *testing.T) {
	db := openIntakeDB(t, "sqlite3-fk-wal", "file:"+filepath.Join(t.TempDir(), "bridge.db")+"?_txlock=immediate")
	in := newIntake(db, zerolog.Nop())
	in.checkToken = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") != "Bearer hs" {
			w.WriteHeader(http.StatusForbidden)
			return false
		}
		return true
	}
	var forwarded []string
	in.forward = http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		var body map[string]json.RawMessage
		_ = json.NewDecoder(r.Body).Decode(&body)
		for k := range body {
			forwarded = append(forwarded, k)
		}
	})
	send := func(token string, body string) int {
		req := httptest.NewRequest(http.MethodPut, "/_matrix/app/v1/transactions/x", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		in.ServeHTTP(rec, req)
		return rec.Code
	}
	evt := `{"events":[{"event_id":"$a","room_id":"!r:localhost","type":"m.room.message","sender":"@u:localhost","content":{"body":"a"}}],"de.sorunome.msc2409.ephemeral":[]}`
	if code := send("wrong", evt); code != http.StatusForbidden {
		t.Errorf("wrong token answered %d", code)
	}
	if code := send("hs", `{"events":`); code == http.StatusOK {
		t.Error("broken JSON answered 200")
	}
	if _, err := db.Exec(context.Background(), `CREATE TRIGGER intake_full BEFORE INSERT ON matrix_intake BEGIN SELECT RAISE(ABORT, 'disk full'); END`); err != nil {
		t.Fatal(err)
	}
	if code := send("hs", evt); code == http.StatusOK {
		t.Error("transaction answered 200 although its events could not be stored")
	}
	if _, err := db.Exec(context.Background(), `DROP TRIGGER intake_full`); err != nil {
		t.Fatal(err)
	}
	if code := send("hs", evt); code != http.StatusOK {
		t.Errorf("transaction answered %d", code)
	}
	state, _, err := in.store.state(context.Background(), "$a")
	if err != nil || state != intakeStored {
		t.Errorf("event state %d, %v; want stored", state, err)
	}
	if len(forwarded) != 1 || forwarded[0] != "de.sorunome.msc2409.ephemeral" {
		t.Errorf("forwarded %q, want only the ephemeral part", forwarded)
	}
	// An event that cannot be keyed is not stored but still reaches the appservice.
	forwarded = nil
	if code := send("hs", `{"events":[{"type":"m.room.message","content":{}}]}`); code != http.StatusOK {
		t.Errorf("transaction with an unkeyed event answered %d", code)
	}
	if len(forwarded) != 1 || forwarded[0] != "events" {
		t.Errorf("forwarded %q, want the unkeyed event", forwarded)
	}
	// The bridge's own messages (bot, ghosts) are not stored, and reach the appservice only
	// with forwardOwn; their state events and everyone else's messages are stored.
	in.ownSender = func(u id.UserID) bool { return u == "@bot:localhost" || strings.HasPrefix(string(u), "@xmpp_") }
	for i, tc := range []struct {
		forwardOwn bool
		want       []string
	}{{false, nil}, {true, []string{"events"}}} {
		in.forwardOwn = tc.forwardOwn
		forwarded = nil
		own := fmt.Sprintf(`{"events":[
			{"event_id":"$ghostmsg%[1]d","room_id":"!r:localhost","type":"m.room.message","sender":"@xmpp_c:localhost","content":{"body":"echo"}},
			{"event_id":"$botmsg%[1]d","room_id":"!r:localhost","type":"m.room.encrypted","sender":"@bot:localhost","content":{}},
			{"event_id":"$ghostjoin%[1]d","room_id":"!r:localhost","type":"m.room.member","state_key":"@xmpp_c:localhost","sender":"@xmpp_c:localhost","content":{"membership":"join"}},
			{"event_id":"$user%[1]d","room_id":"!r:localhost","type":"m.room.message","sender":"@u:localhost","content":{"body":"b"}}]}`, i)
		if code := send("hs", own); code != http.StatusOK {
			t.Fatalf("forwardOwn %v: transaction answered %d", tc.forwardOwn, code)
		}
		for _, ev := range []struct {
			evt    string
			stored bool
		}{{"$ghostmsg", false}, {"$botmsg", false}, {"$ghostjoin", true}, {"$user", true}} {
			evt := id.EventID(fmt.Sprintf("%s%d", ev.evt, i))
			state, _, err := in.store.state(context.Background(), evt)
			if err != nil || (state == intakeStored) != ev.stored {
				t.Errorf("forwardOwn %v: %s: state %d, %v; want stored %v", tc.forwardOwn, evt, state, err, ev.stored)
			}
		}
		if !slices.Equal(forwarded, tc.want) {
			t.Errorf("forwardOwn %v: forwarded %q, want %q", tc.forwardOwn, forwarded, tc.want)
		}
	}
}

// TestSendsToXMPP: the events the handler sends with sendOnce, which may be
// stored "sending" ahead and handed over in runs.
func TestSendsToXMPP(t *testing.T) {
	for _, tc := range []struct {
		typ  string
		want bool
	}{
		{"m.room.message", true},
		{"m.sticker", true},
		{"m.room.encrypted", true},
		{"m.reaction", false},
		{"m.room.redaction", false},
		{"m.room.member", false},
		{"m.room.topic", false},
	} {
		if got := sendsToXMPP(tc.typ); got != tc.want {
			t.Errorf("sendsToXMPP(%q) = %v, want %v", tc.typ, got, tc.want)
		}
	}
}

// TestReadyGate: a message waits for the login, and past the bound fails
// with a status that bridgev2 shows as a notice.
func TestReadyGate(t *testing.T) {
	var g readyGate
	go func() {
		time.Sleep(20 * time.Millisecond)
		g.set(true)
	}()
	if err := g.wait(context.Background(), time.Minute); err != nil {
		t.Fatalf("wait: %v", err)
	}
	g.set(false)
	err := g.wait(context.Background(), 30*time.Millisecond)
	if !errors.Is(err, errLoginNotReady) {
		t.Fatalf("wait past the bound: %v", err)
	}
	st := bridgev2.WrapErrorInStatus(notReadyStatus(err, 30*time.Millisecond))
	if !st.SendNotice || st.Message == "" || !errors.Is(st.InternalError, errLoginNotReady) {
		t.Errorf("status %+v: want a notice with a message", st)
	}
	// sendOnce without an intake row just sends.
	var in *intake
	sent := 0
	if already, err := in.sendOnce(context.Background(), "$x", "id", func() error { sent++; return nil }, nil); err != nil || already || sent != 1 {
		t.Errorf("sendOnce without intake: already=%v err=%v sent=%d", already, err, sent)
	}
}

// TestIntakeRuns hands a transaction's messages to a warm drain in runs
// with one wait for the portal behind each (intake_run.go): at most
// handRun messages, and an event that is not a message ends a run.
func TestIntakeRuns(t *testing.T) {
	for _, tc := range []struct {
		name     string
		n        int // messages
		stateAt  int // a state event before the message of this index (-1: none)
		barriers int
		typ      string // of the messages (a Megolm portal's are encrypted)
	}{
		{"one run", 10, -1, 1, "m.room.message"},
		{"two runs", handRun + 4, -1, 2, "m.room.message"},
		{"state event between", 10, 5, 2, "m.room.message"},
		{"encrypted", handRun + 4, -1, 2, "m.room.encrypted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openIntakeDB(t, "sqlite3-fk-wal", "file:"+filepath.Join(t.TempDir(), "bridge.db")+"?_txlock=immediate")
			w := &intakeWorld{t: t, db: db, bridged: map[id.EventID]bool{}}
			in := w.newIntake("")
			var barriers int
			in.barrier = func(context.Context, *event.Event) error {
				w.mu.Lock()
				barriers++
				w.mu.Unlock()
				return nil
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if err := in.start(ctx); err != nil {
				t.Fatal(err)
			}
			if code := put(in, "warm", intakeWarmup("warm")); code != http.StatusOK {
				t.Fatalf("warm-up answered %d", code)
			}
			in.wait()
			var evts []map[string]any
			for i := range tc.n {
				if i == tc.stateAt {
					evts = append(evts, map[string]any{"event_id": "$s", "room_id": "!room0:localhost", "sender": "@alice:localhost",
						"type": "m.room.topic", "state_key": "", "content": map[string]any{"topic": "t"}})
				}
				evts = append(evts, map[string]any{"event_id": fmt.Sprintf("$m%d", i), "room_id": "!room0:localhost",
					"sender": "@alice:localhost", "type": tc.typ, "content": map[string]any{"msgtype": "m.text", "body": fmt.Sprintf("m%d", i)}})
			}
			js, _ := json.Marshal(map[string]any{"events": evts})
			w.mu.Lock()
			barriers = 0
			w.mu.Unlock()
			in.deliver = func(ctx context.Context, evt *event.Event) error {
				if evt.StateKey != nil {
					return nil // bridgev2 applies the topic
				}
				return in.dispatch(ctx, evt)
			}
			if code := put(in, "t", js); code != http.StatusOK {
				t.Fatalf("transaction answered %d", code)
			}
			in.wait()
			w.mu.Lock()
			defer w.mu.Unlock()
			if barriers != tc.barriers {
				t.Errorf("%d waits for the portal, want %d", barriers, tc.barriers)
			}
			var msgs []string
			for _, line := range w.wire {
				if !strings.Contains(line, "|w") {
					msgs = append(msgs, line)
				}
			}
			checkIntakeWire(t, msgs, tc.n, false)
			var left int
			if err := db.QueryRow(context.Background(), `SELECT COUNT(*) FROM matrix_intake WHERE state<3`).Scan(&left); err != nil {
				t.Fatal(err)
			}
			if left != 0 {
				t.Errorf("%d intake rows not done", left)
			}
		})
	}
}

// TestIntakeDrainStays: a room's drain with nothing left waits idle for
// the room's next event before it exits, so messages that come one by one
// reuse it; with no idle time it exits at once.
func TestIntakeDrainStays(t *testing.T) {
	for _, tc := range []struct {
		idle  time.Duration
		alive bool
	}{{0, false}, {time.Minute, true}} {
		t.Run(tc.idle.String(), func(t *testing.T) {
			db := openIntakeDB(t, "sqlite3-fk-wal", "file:"+filepath.Join(t.TempDir(), "bridge.db")+"?_txlock=immediate")
			w := &intakeWorld{t: t, db: db, bridged: map[id.EventID]bool{}}
			in := w.newIntake("")
			in.idle = tc.idle
			ctx, cancel := context.WithCancel(context.Background())
			if err := in.start(ctx); err != nil {
				t.Fatal(err)
			}
			for i := range 2 {
				if code := put(in, fmt.Sprint(i), intakeWarmup(fmt.Sprint(i))); code != http.StatusOK {
					t.Fatalf("transaction %d answered %d", i, code)
				}
				deadline := time.Now().Add(10 * time.Second)
				for {
					var left int
					if err := db.QueryRow(context.Background(), `SELECT COUNT(*) FROM matrix_intake WHERE state<3`).Scan(&left); err != nil {
						t.Fatal(err)
					}
					if left == 0 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%d rows not done", left)
					}
					time.Sleep(10 * time.Millisecond)
				}
				// Past the run's linger the drain has nothing left: it
				// exits (polled, the machine may be busy) or stays.
				time.Sleep(10 * runLinger)
				alive := func() bool {
					in.mu.Lock()
					defer in.mu.Unlock()
					_, ok := in.workers["!room0:localhost"]
					return ok
				}
				for end := time.Now().Add(5 * time.Second); !tc.alive && alive() && time.Now().Before(end); {
					time.Sleep(10 * time.Millisecond)
				}
				if got := alive(); got != tc.alive {
					t.Errorf("after transaction %d: drain alive %v, want %v", i, got, tc.alive)
				}
			}
			cancel()
			in.wait()
			if got := len(w.wire); got != 4 {
				t.Errorf("%d messages reached XMPP, want 4", got)
			}
		})
	}
}

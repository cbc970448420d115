package e2e

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/assink"
	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

// BenchmarkSinkThroughput is the bridge's own ceiling (`make bench-sink`, not part of the test
// suite): the real bridge binary (SQLite) and a real Prosody, with a MINIMAL APPSERVICE SINK
// (e2e/internal/assink) in place of a homeserver, so that the homeserver's cost is out of the
// figures. It drives four chats of one login (MXOMEMO_SINK_CASES, default all): a plaintext 1:1
// chat (bob), an OMEMO 2 1:1 chat (dave, our omemoxmpp client; the portal is not Megolm-encrypted),
// a room made with create_group with bob, carol and dave as occupants (plaintext from bob), and
// the same room once dave's OMEMO message has switched it to OMEMO. Per chat and direction it
// measures, at a fixed rate (MXOMEMO_SINK_RATE msg/s, default 200, for 5 s), the latency from the
// send to the receiver's read and the bridge's added latency: XMPP → Matrix from the moment the
// XMPP server delivered the same stanza to a witness (a second resource of the account for 1:1,
// another occupant for rooms) to the sink's receipt; Matrix → XMPP the end-to-end latency less
// that of a plaintext message sent at the same moment by an XMPP client by the same route (the
// server's own delivery time then). Then the throughput of a burst of MXOMEMO_SINK_N messages
// (default 2000) sent as fast as the sender can: XMPP → Matrix from one contact, Matrix → XMPP
// as transactions of up to 50 events, one at a time, as a homeserver with a backlog sends them.
// CPU is the bridge process's per message over each phase. Beside them, Prosody alone: one
// client to another at the same rate and in a burst of the same size (xmpp→xmpp).
func BenchmarkSinkThroughput(b *testing.B) {
	burst := envInt(b, "MXOMEMO_SINK_N", 2000)
	rate := envInt(b, "MXOMEMO_SINK_RATE", 200)
	want := strings.Split(cmp.Or(os.Getenv("MXOMEMO_SINK_CASES"), "chat,chat-omemo,room,room-omemo"), ",")
	latN := rate * 5
	bin := bridgeBin(b)
	// Prosody logs at info, as a production server does by default: at debug it spends CPU
	// on a log line per stanza, its own cost per message then overstated and, on the shared
	// cores, the bridge's figures understated. MXOMEMO_SINK_STANZAS=1 logs every stanza
	// instead, to count the bridge's per message (its CPU figures are not comparable).
	stanzas := os.Getenv("MXOMEMO_SINK_STANZAS") != ""
	// The cases share their accounts, so the bridge's account archives every case's messages:
	// past Prosody's per-account quota of 10 000 items (internal storage), mod_mam truncates it
	// to 9900 every 100 messages by loading and rewriting the whole list, which made the
	// matrix→xmpp burst of the second 1:1 case at SINK_N=2000 25–29 ms of Prosody CPU per
	// message (docs/scaling.md). Each case's figures then depend on the cases before it; a limit
	// no run reaches keeps them the per-message cost.
	popts := testenv.ProsodyOptions{LogLevel: "info", LogIQGets: true, ExtraConfig: "storage_archive_item_limit = 1000000"}
	if stanzas {
		popts.LogLevel, popts.StanzaDebug = "debug", true
	}
	prosody := testenv.StartProsody(b, popts)
	tap := startTap(b, prosody)
	cfg, sink, br := startSinkBridge(b, bin)
	ctx := context.Background()
	b.Cleanup(func() {
		if err := br.Stop(); err != nil {
			b.Errorf("bridge: %v", err)
		}
		if dir := benchProfileDir(); dir != "" {
			_ = os.WriteFile(filepath.Join(dir, "bridge.log"), []byte(br.Log()), 0o644)
			_ = os.WriteFile(filepath.Join(dir, "prosody.log"), []byte(prosody.Log()), 0o644)
		}
		// The tap's acknowledgement translation: neither side may have seen a count it did not
		// expect (the bridge logs its mismatches when its stream ends).
		for _, l := range []struct{ who, log, complaint string }{
			{"bridge", br.Log(), "acknowledgement did not match"},
			{"Prosody", prosody.Log(), "new stanzas, but we sent"},
		} {
			if tap != nil && strings.Contains(l.log, l.complaint) {
				b.Errorf("the %s saw a stream management count it did not expect (%q in its log)", l.who, l.complaint)
			}
		}
		if b.Failed() {
			b.Logf("sink: unknown calls %v\n--- bridge log (last 20 kB) ---\n%s", sink.Unknown(), br.Tail(20000))
		}
	})
	if err := br.Start(ctx); err != nil {
		b.Fatal(err)
	}
	server := prosody.Addr()
	if tap != nil {
		server = tap.Addr()
	}
	alice := jid.MustParse(prosody.CreateAccount(b, "alice", "alice-secret"))
	bob := jid.MustParse(prosody.CreateAccount(b, "bob", "bob-secret"))
	carol := jid.MustParse(prosody.CreateAccount(b, "carol", "carol-secret"))
	dave := jid.MustParse(prosody.CreateAccount(b, "dave", "dave-secret"))
	user := id.UserID("@mx:localhost")
	lctx, lcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer lcancel()
	if _, err := harness.ProvisionLogin(lctx, cfg, user, harness.LoginInput{
		JID: alice.String(), Password: "alice-secret", Server: server, InsecureHost: "localhost",
	}); err != nil {
		b.Fatal(err)
	}
	dial := func(account jid.JID, resource, password string) *harness.Peer {
		p, err := harness.DialPeer(lctx, prosody.Addr(), prosody.CertFile(), jid.MustParse(account.String()+"/"+resource), password)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(p.Close)
		return p
	}
	bobC, carolC, daveC := dial(bob, "bench", "bob-secret"), dial(carol, "bench", "carol-secret"), dial(dave, "bench", "dave-secret")
	// The witness: a second resource of the bridge's account, with the same priority (0), so the
	// server delivers each message to the bare JID to both at once.
	witness := dial(alice, "witness", "alice-secret")
	daveX := omemoPeer(lctx, b, daveC, dave, alice)

	// The sink's receiver: every body the bridge sends, with its arrival time and room.
	type arrival struct {
		at   time.Time
		room string
	}
	var mu sync.Mutex
	arrived := map[string]arrival{}
	var order []string // every body in the order the sink received them
	changed := make(chan struct{}, 1)
	go func() {
		for m := range sink.Messages {
			mu.Lock()
			arrived[m.Body] = arrival{m.At, m.Room}
			order = append(order, m.Body)
			mu.Unlock()
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	}()
	waitArrived := func(bodies []string, d time.Duration) []arrival {
		deadline := time.After(d)
		for {
			mu.Lock()
			out := make([]arrival, 0, len(bodies))
			for _, body := range bodies {
				if a, ok := arrived[body]; ok {
					out = append(out, a)
				}
			}
			mu.Unlock()
			if len(out) == len(bodies) {
				return out
			}
			select {
			case <-changed:
			case <-time.After(200 * time.Millisecond):
			case <-deadline:
				b.Fatalf("%d of %d messages reached the sink", len(out), len(bodies))
			}
		}
	}
	var seq int
	nextIDs := func(prefix string, n int) (ids, bodies []string) {
		for range n {
			seq++
			ids = append(ids, fmt.Sprintf("sink-%d", seq))
			bodies = append(bodies, fmt.Sprintf("%s %d %d", prefix, seq, time.Now().UnixNano()))
		}
		return ids, bodies
	}
	// warmUp sends messages of c until one reaches the sink (the first makes the portal, and
	// the login's session may still be coming up) and returns the portal.
	warmUp := func(c *sinkCase) string {
		for i := 0; ; i++ {
			ids, bodies := nextIDs("warm-up "+c.name, 1)
			if err := c.build(ctx, b, ids, bodies)[0](ctx); err != nil {
				b.Fatal(err)
			}
			time.Sleep(time.Second)
			mu.Lock()
			a, ok := arrived[bodies[0]]
			mu.Unlock()
			if ok {
				return a.room
			}
			if i == 60 {
				b.Fatalf("%s: no portal message in the sink after a minute; unknown calls %v", c.name, sink.Unknown())
			}
		}
	}

	chat := &sinkCase{name: "chat", sender: bobC, build: plainChats(bobC, alice), witness: witness,
		raw: rawStanzas(alice, stanza.ChatMessage), tapFrom: bobC.JID.String(), capTo: bob.String(),
		receiver: bobC, fromBridge: fromAccount(alice, false), bodies: plainBodies,
		shadow:   func(ctx context.Context, body string) error { return carolC.SendChat(ctx, bob, "", "", body) },
		isShadow: func(m harness.ReceivedMessage) bool { return m.From == carolC.JID.String() },
	}
	chatOMEMO := &sinkCase{name: "chat-omemo", sender: daveC, build: omemoMessages(daveC, daveX, alice, nil), witness: witness,
		raw: rawOMEMO(daveX, alice, nil), tapFrom: daveC.JID.String(), capTo: dave.String(),
		receiver: daveC, fromBridge: fromAccount(alice, true), bodies: omemoBodies(daveX, alice),
		shadow:   func(ctx context.Context, body string) error { return carolC.SendChat(ctx, dave, "", "", body) },
		isShadow: func(m harness.ReceivedMessage) bool { return m.From == carolC.JID.String() },
	}
	cases := []*sinkCase{chat, chatOMEMO}
	if slices.Contains(want, "room") || slices.Contains(want, "room-omemo") {
		mxRoom, portalID, failed, err := harness.CreateGroup(lctx, cfg, user, alice.String(), "room", map[string]any{
			"participants": []string{bob.String(), carol.String(), dave.String()},
			"name":         map[string]string{"name": "Sink bench"},
		})
		if err != nil || len(failed) != 0 {
			b.Fatalf("create_group: %v, failed %v; unknown calls %v", err, failed, sink.Unknown())
		}
		room := jid.MustParse(strings.TrimPrefix(portalID, "muc:"))
		roomJoin(lctx, b, bobC, room, "bob")
		roomJoin(lctx, b, carolC, room, "carol")
		roomJoin(lctx, b, daveC, room, "dave")
		// The shadows go to the receiver directly (through the room they would reach the bridge
		// too, and add its work to the figures).
		isShadow := func(m harness.ReceivedMessage) bool { return m.From == carolC.JID.String() }
		cases = append(cases,
			&sinkCase{name: "room", portal: mxRoom.String(), room: room.String(), sender: bobC, build: plainGroupchats(bobC, room), witness: carolC,
				raw: rawStanzas(room, stanza.GroupChatMessage), tapFrom: room.String() + "/bob", capTo: room.String(),
				receiver: bobC, fromBridge: fromOccupant(room, false, "bob", "carol", "dave"), bodies: plainBodies,
				shadow: chat.shadow, isShadow: isShadow},
			&sinkCase{name: "room-omemo", portal: mxRoom.String(), room: room.String(), sender: daveC, build: omemoMessages(daveC, daveX, room, []jid.JID{alice, bob, carol, dave}), witness: carolC,
				raw: rawOMEMO(daveX, room, []jid.JID{alice, bob, carol, dave}), tapFrom: room.String() + "/dave", capTo: room.String(),
				receiver: daveC, fromBridge: fromOccupant(room, true, "bob", "carol", "dave"), bodies: omemoBodies(daveX, alice),
				shadow: chatOMEMO.shadow, isShadow: isShadow})
	}
	hsToken := hsTokenOf(b, cfg)
	client := &http.Client{Timeout: time.Minute}
	pid := br.PID()

	// xmLat sends n messages of c (perSec 0: as fast as the sender can) and returns the
	// latencies (send to sink), the added latencies (witness to sink), the wall time until the
	// last arrived and the bridge's CPU per message.
	xmLat := func(c *sinkCase, prefix string, n, perSec int) (lat, added []time.Duration, wall time.Duration, cpu float64) {
		ids, bodies := nextIDs(prefix, n)
		sends := c.build(ctx, b, ids, bodies)
		wcur := c.witness.Cursor()
		sent := make([]time.Time, n)
		cpu0 := procCPU(b, pid)
		start := time.Now()
		for i := range n {
			if perSec > 0 {
				if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(perSec))); d > 0 {
					time.Sleep(d)
				}
			}
			sent[i] = time.Now()
			if err := sends[i](ctx); err != nil {
				b.Fatal(err)
			}
		}
		got := waitArrived(bodies, 5*time.Minute)
		cpu = (procCPU(b, pid) - cpu0) / float64(n)
		seen := map[string]time.Time{}
		for _, m := range c.witness.Received()[wcur:] {
			if _, ok := seen[m.ID]; !ok && m.ID != "" {
				seen[m.ID] = m.At
			}
		}
		var last time.Time
		for i, a := range got {
			lat = append(lat, a.at.Sub(sent[i]))
			if w, ok := seen[ids[i]]; ok {
				added = append(added, a.at.Sub(w))
			}
			if a.at.After(last) {
				last = a.at
			}
		}
		return lat, added, last.Sub(start), cpu
	}
	// pushE sends bodies to c's portal as one transaction (safe from several goroutines).
	pushE := func(c *sinkCase, bodies []string) (time.Time, error) {
		var evts []assink.Event
		now := time.Now()
		for _, body := range bodies {
			evts = append(evts, assink.Event{
				Type: "m.room.message", RoomID: c.portal, Sender: user.String(), EventID: sink.NewEventID(),
				Timestamp: now.UnixMilli(), Content: map[string]any{"msgtype": "m.text", "body": body},
			})
		}
		return now, sink.Push(ctx, client, cfg.AppserviceURL(), hsToken, evts)
	}
	push := func(c *sinkCase, bodies []string) time.Time {
		now, err := pushE(c, bodies)
		if err != nil {
			b.Fatal(err)
		}
		return now
	}
	// fromMatrix waits for n of the bridge's messages to c's receiver after cur and returns
	// their plaintexts and arrival times.
	fromMatrix := func(c *sinkCase, cur, n int) map[string]time.Time {
		deadline := time.Now().Add(5 * time.Minute)
		for {
			var ms []harness.ReceivedMessage
			for _, m := range c.receiver.Received()[cur:] {
				if c.fromBridge(m) {
					ms = append(ms, m)
				}
			}
			if len(ms) >= n {
				got := map[string]time.Time{}
				for i, body := range c.bodies(ctx, b, ms) {
					got[body] = ms[i].At
				}
				return got
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s: %d of %d Matrix messages reached %s", c.name, len(ms), n, c.receiver.JID)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	// mxLat pushes n events to c's portal, in transactions of up to batch events, at perSec
	// events per second (0: as fast as the bridge answers); at a rate, each event has its shadow.
	mxLat := func(c *sinkCase, prefix string, n, perSec, batch int) (lat, added []time.Duration, wall time.Duration, cpu float64) {
		cur := c.receiver.Cursor()
		_, bodies := nextIDs(prefix, n)
		sent := map[string]time.Time{}
		shadowSent := map[string]time.Time{}
		cpu0 := procCPU(b, pid)
		start := time.Now()
		for i := 0; i < n; i += batch {
			if perSec > 0 {
				if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(perSec))); d > 0 {
					time.Sleep(d)
				}
				sb := "shadow " + bodies[i]
				shadowSent[sb] = time.Now()
				if err := c.shadow(ctx, sb); err != nil {
					b.Fatal(err)
				}
			}
			at := push(c, bodies[i:min(n, i+batch)])
			for _, body := range bodies[i:min(n, i+batch)] {
				sent[body] = at
			}
		}
		saveProfile(b, cfg, "goroutine?debug=2", c.name+"-"+prefix+"-goroutines.txt")
		got := fromMatrix(c, cur, n)
		cpu = (procCPU(b, pid) - cpu0) / float64(n)
		shadows := map[string]time.Time{}
		for _, m := range c.receiver.Received()[cur:] {
			if c.isShadow(m) {
				shadows[m.Body] = m.At
			}
		}
		var last time.Time
		for _, body := range bodies {
			at, ok := got[body]
			if !ok {
				b.Fatalf("%s: %q did not reach %s (or was not the bridge's)", c.name, body, c.receiver.JID)
			}
			lat = append(lat, at.Sub(sent[body]))
			if sh, ok := shadows["shadow "+body]; ok {
				added = append(added, at.Sub(sent[body])-sh.Sub(shadowSent["shadow "+body]))
			}
			if at.After(last) {
				last = at
			}
		}
		return lat, added, last.Sub(start), cpu
	}

	fmt.Printf("SINK bridge binary, real Prosody, MINIMAL APPSERVICE SINK instead of a homeserver; SQLite\n")
	fmt.Printf("SINK latency: send to read; added: XMPP→Matrix from the server's delivery to a witness, Matrix→XMPP less a plain XMPP message's latency sent at the same moment\n")
	fmt.Printf("SINK room-iq/msg: IQ gets the room received per message in the phase (an info line per IQ get in Prosody's log), the bridge's questions to the room\n")
	fmt.Printf("SINK Prosody's log level: %s%s\n", popts.LogLevel, map[bool]string{true: " with every stanza logged (MXOMEMO_SINK_STANZAS): CPU figures not comparable", false: " (a production server's default)"}[stanzas])
	fmt.Printf("SINK cpu-µs/msg: the bridge process's CPU per message; xmpp-µs/msg Prosody's, test-µs/msg this process's (sink and XMPP clients), all on the same %d cores\n", runtime.NumCPU())
	fmt.Printf("SINK %-10s %-12s %-9s %6s %6s %9s %9s %9s %10s %10s %10s %11s %10s %10s\n", "case", "direction", "mode", "msgs", "msg/s", "p50", "p99", "max", "added-p50", "added-p99", "cpu-µs/msg", "room-iq/msg", "xmpp-µs/msg", "test-µs/msg")
	pct := func(d []time.Duration, q float64) string {
		if len(d) == 0 {
			return "-"
		}
		slices.Sort(d)
		return d[min(len(d)-1, int(float64(len(d))*q))].Round(100 * time.Microsecond).String()
	}
	// others is the CPU time so far of the other processes on the machine's cores in the run:
	// Prosody, and this process (the sink, the XMPP clients).
	self := os.Getpid()
	others := func() [2]float64 { return [2]float64{procCPU(b, prosody.PID()), procCPU(b, self)} }
	report := func(c, dir, mode string, lat, added []time.Duration, wall time.Duration, cpu float64, iqs string, others0 [2]float64) {
		o := others()
		n := float64(max(len(lat), 1))
		fmt.Printf("SINK %-10s %-12s %-9s %6d %6.0f %9s %9s %9s %10s %10s %10.0f %11s %10.0f %10.0f\n", c, dir, mode, len(lat), float64(len(lat))/wall.Seconds(),
			pct(lat, 0.5), pct(lat, 0.99), pct(lat, 1), pct(added, 0.5), pct(added, 0.99), cpu*1e6, iqs,
			(o[0]-others0[0])/n*1e6, (o[1]-others0[1])/n*1e6)
	}
	// xmpp→xmpp: Prosody alone, client to client, at the same rate and in a burst of the same
	// size as the bridge's: what the server itself allows (both accounts archive, as the
	// bridge's does).
	baseline := func(prefix string, n, perSec int) {
		cur := carolC.Cursor()
		sent := map[string]time.Time{}
		others0 := others()
		start := time.Now()
		for i := range n {
			if perSec > 0 {
				if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(perSec))); d > 0 {
					time.Sleep(d)
				}
			}
			body := fmt.Sprintf("%s %d", prefix, i)
			sent[body] = time.Now()
			if err := bobC.SendChat(ctx, carol, "", "", body); err != nil {
				b.Fatal(err)
			}
		}
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Minute)
		if _, _, err := carolC.WaitMessage(wctx, cur, bodyIs(fmt.Sprintf("%s %d", prefix, n-1))); err != nil {
			b.Fatal(err)
		}
		wcancel()
		var lat []time.Duration
		for _, m := range carolC.Received()[cur:] {
			if t, ok := sent[m.Body]; ok {
				lat = append(lat, m.At.Sub(t))
			}
		}
		mode := "burst"
		if perSec > 0 {
			mode = fmt.Sprintf("%d/s", perSec)
		}
		report("-", "xmpp→xmpp", mode, lat, nil, time.Since(start), 0, "-", others0)
	}
	tr := &tapRun{tap: tap, account: alice.String(), pid: pid, nextIDs: nextIDs, pushE: pushE,
		waitArrived: func(bodies []string, d time.Duration) { waitArrived(bodies, d) },
		arrivals: func(k int) ([]string, int) {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(order[k:]), len(order)
		},
		arrivedAt: func(bodies []string) []time.Time {
			mu.Lock()
			defer mu.Unlock()
			out := make([]time.Time, len(bodies))
			for i, body := range bodies {
				out[i] = arrived[body].at
			}
			return out
		},
	}
	logOff := int64(0)
	bridgeSessions := map[string]bool{}
	if stanzas {
		_, logOff = tallyStanzas(b, filepath.Join(prosody.Dir(), "prosody.log"), 0, alice.String(), witness.JID.String(), bridgeSessions)
	}
	baseline("baseline", latN, rate)
	baseline("baseline-burst", burst, 0)
	for _, c := range cases {
		if !slices.Contains(want, c.name) {
			continue
		}
		if room := warmUp(c); c.portal == "" {
			c.portal = room
		}
		// One event first: the portal's state (OMEMO on in room-omemo) is settled.
		cur := c.receiver.Cursor()
		_, bodies := nextIDs("warm-up from matrix", 1)
		push(c, bodies)
		fromMatrix(c, cur, 1)
		phases := []sinkPhase{
			{"xmpp→matrix", fmt.Sprintf("%d/s", rate), func() ([]time.Duration, []time.Duration, time.Duration, float64) {
				return xmLat(c, "xm-rate", latN, rate)
			}},
			{"matrix→xmpp", fmt.Sprintf("%d/s", rate), func() ([]time.Duration, []time.Duration, time.Duration, float64) {
				return mxLat(c, "mx-rate", latN, rate, 1)
			}},
			{"xmpp→matrix", "burst", func() ([]time.Duration, []time.Duration, time.Duration, float64) {
				return xmLat(c, "xm-burst", burst, 0)
			}},
			{"matrix→xmpp", "burst", func() ([]time.Duration, []time.Duration, time.Duration, float64) {
				return mxLat(c, "mx-burst", burst, 0, 50)
			}},
		}
		if tap != nil {
			phases = append(phases, sinkPhase{"xmpp→matrix", "burst-tap", func() ([]time.Duration, []time.Duration, time.Duration, float64) {
				lat, wall, cpu := tr.xm(ctx, b, c, burst)
				return lat, nil, wall, cpu
			}}, sinkPhase{"matrix→xmpp", "burst-tap", func() ([]time.Duration, []time.Duration, time.Duration, float64) {
				lat, wall, cpu := tr.mx(ctx, b, c, burst)
				return lat, nil, wall, cpu
			}})
		}
		for _, ph := range phases {
			name := fmt.Sprintf("sink-%s-%s-%s", c.name, ph.dir[:1]+ph.dir[strings.IndexRune(ph.dir, '→')+len("→"):][:1], strings.TrimSuffix(ph.mode, "/s"))
			// The allocations of the phase: go tool pprof -base name-allocs-0.pprof name-allocs-1.pprof
			saveProfile(b, cfg, "allocs", name+"-allocs-0.pprof")
			prof := cpuProfile(b, cfg, name)
			trace := func() {}
			if ph.mode == "burst-tap" {
				trace = traceDuring(b, cfg, name, 4)
			}
			iq0 := roomIQs(prosody, c.room)
			if stanzas {
				_, logOff = tallyStanzas(b, filepath.Join(prosody.Dir(), "prosody.log"), logOff, alice.String(), witness.JID.String(), bridgeSessions)
			}
			others0 := others()
			lat, added, wall, cpu := ph.run()
			prof()
			trace()
			saveProfile(b, cfg, "allocs", name+"-allocs-1.pprof")
			iqs := "-"
			if c.room != "" {
				iqs = fmt.Sprintf("%.2f", float64(roomIQs(prosody, c.room)-iq0)/float64(len(lat)))
			}
			report(c.name, ph.dir, ph.mode, lat, added, wall, cpu, iqs, others0)
			if stanzas {
				// The last acknowledgements of the phase come after its last message.
				time.Sleep(time.Second)
				var t stanzaTally
				t, logOff = tallyStanzas(b, filepath.Join(prosody.Dir(), "prosody.log"), logOff, alice.String(), witness.JID.String(), bridgeSessions)
				fmt.Printf("SINK stanzas/msg %s %s %s: %s\n", c.name, ph.dir, ph.mode, t.perMessage(len(lat)))
			}
		}
	}
	if tap != nil {
		// Several chats at once: the instance's ceiling rather than one chat's (one chat's
		// XMPP → Matrix path is serial). The room is in OMEMO since room-omemo, so its plaintext
		// case is left out.
		var all []*sinkCase
		for _, c := range cases {
			if slices.Contains(want, c.name) && c.name != "room" {
				all = append(all, c)
			}
		}
		if len(all) > 1 {
			names := make([]string, len(all))
			for i, c := range all {
				names[i] = c.name
			}
			for _, ph := range []sinkPhase{
				{"xmpp→matrix", "burst-tap", func() ([]time.Duration, []time.Duration, time.Duration, float64) {
					lat, wall, cpu := tr.xmAll(ctx, b, all, burst)
					return lat, nil, wall, cpu
				}},
				{"matrix→xmpp", "burst-tap", func() ([]time.Duration, []time.Duration, time.Duration, float64) {
					lat, wall, cpu := tr.mxAll(ctx, b, all, burst)
					return lat, nil, wall, cpu
				}},
			} {
				others0 := others()
				lat, added, wall, cpu := ph.run()
				report("all", ph.dir, ph.mode, lat, added, wall, cpu, "-", others0)
			}
			fmt.Printf("SINK all: %s at once, one message of each in turn\n", strings.Join(names, ", "))
		}
		// The last acknowledgements come after the last phase's messages.
		time.Sleep(2 * time.Second)
		toServer, toBridge := tap.Translated()
		fmt.Printf("SINK tap: %d connection(s) of the bridge; acknowledgements translated: %d of the bridge's to Prosody, %d of Prosody's to the bridge\n",
			tap.Connections(), toServer, toBridge)
		if err := tap.Err(); err != nil {
			b.Errorf("tap: %v", err)
		}
	}
	if u := sink.Unknown(); len(u) > 0 {
		fmt.Printf("SINK calls answered with {}: %v\n", u)
	}
}

// sinkPhase is one row of a case: a direction, a mode (a rate, burst or burst-tap) and the run
// that returns the latencies, the added latencies, the wall time and the bridge's CPU per message.
type sinkPhase struct {
	dir, mode string
	run       func() ([]time.Duration, []time.Duration, time.Duration, float64)
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// hsTokenOf reads appservice.hs_token from a bridge config.
func hsTokenOf(b testing.TB, c *harness.BridgeConfig) string {
	raw, err := os.ReadFile(c.ConfigPath())
	if err != nil {
		b.Fatal(err)
	}
	var cfg struct {
		Appservice struct {
			HSToken string `yaml:"hs_token"`
		} `yaml:"appservice"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		b.Fatal(err)
	}
	return cfg.Appservice.HSToken
}

// startSinkBridge writes the sink benchmarks' bridge configuration (info logs, the profiling and
// pool settings of the environment) and starts the appservice sink in place of the homeserver;
// the bridge is returned unstarted.
func startSinkBridge(b *testing.B, bin string) (*harness.BridgeConfig, *assink.Sink, *harness.Bridge) {
	hsPort := testenv.FreePort(b)
	cfg := &harness.BridgeConfig{
		Dir:            b.TempDir(),
		HomeserverURL:  fmt.Sprintf("http://127.0.0.1:%d", hsPort),
		Domain:         "localhost",
		AppservicePort: testenv.FreePort(b),
		LogLevel:       "info",
	}
	profileDebug(cfg)
	sinkDBConns(b, cfg)
	if err := harness.WriteConfig(context.Background(), bin, cfg); err != nil {
		b.Fatal(err)
	}
	sink, err := assink.Start(hsPort, "localhost", "@xmppbot:localhost")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(sink.Close)
	return cfg, sink, &harness.Bridge{Bin: bin, Config: cfg}
}

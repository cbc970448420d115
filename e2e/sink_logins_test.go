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
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/assink"
	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/e2e/internal/xmpptap"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

// BenchmarkSinkTapLogins is the instance's ceiling with several logins (`make bench-sink`,
// after BenchmarkSinkThroughput): one login's XMPP → Matrix path is serial (docs/delivery.md,
// "One queue"), so one login's burst-tap rows bound one login, not the instance. Here
// MXOMEMO_SINK_LOGINS logins (default 4), each its own XMPP account behind its own tap
// (BENCHMARK-ONLY, e2e/internal/xmpptap) with its own contacts and portals in the MINIMAL
// APPSERVICE SINK, take MXOMEMO_SINK_N messages each at the same time, per case
// (MXOMEMO_SINK_LOGIN_CASES, default all: plaintext 1:1 from bob<i>, OMEMO 2 1:1 from dave<i>, a
// plaintext room of the login's with both, bob<i> writing) and direction, checked as the burst-tap
// rows are: every message once, in order, with its body (OMEMO: decrypted after the clock). It
// prints the total msg/s over all logins and the bridge's CPU per message, with the load average.
func BenchmarkSinkTapLogins(b *testing.B) {
	if os.Getenv("MXOMEMO_SINK_TAP") == "0" {
		b.Skip("MXOMEMO_SINK_TAP=0: no tap, so no ceiling with several logins")
	}
	perLogin := envInt(b, "MXOMEMO_SINK_N", 2000)
	k := envInt(b, "MXOMEMO_SINK_LOGINS", 4)
	names := strings.Split(cmp.Or(os.Getenv("MXOMEMO_SINK_LOGIN_CASES"), "chat,chat-omemo,room"), ",")
	bin := bridgeBin(b)
	// As in BenchmarkSinkThroughput: Prosody at info, no archive truncation in the run.
	prosody := testenv.StartProsody(b, testenv.ProsodyOptions{LogLevel: "info", ExtraConfig: "storage_archive_item_limit = 1000000"})
	cfg, sink, br := startSinkBridge(b, bin)
	ctx := context.Background()
	taps := make([]*xmpptap.Tap, k)
	b.Cleanup(func() {
		if err := br.Stop(); err != nil {
			b.Errorf("bridge: %v", err)
		}
		if dir := benchProfileDir(); dir != "" {
			_ = os.WriteFile(filepath.Join(dir, "logins-bridge.log"), []byte(br.Log()), 0o644)
		}
		if strings.Contains(br.Log(), "acknowledgement did not match") || strings.Contains(prosody.Log(), "new stanzas, but we sent") {
			b.Errorf("a stream management count one side did not expect (see the logs)")
		}
		if b.Failed() {
			b.Logf("sink: unknown calls %v\n--- bridge log (last 20 kB) ---\n%s", sink.Unknown(), br.Tail(20000))
		}
	})
	if err := br.Start(ctx); err != nil {
		b.Fatal(err)
	}
	rcv := newSinkReceiver(sink)
	lctx, lcancel := context.WithTimeout(ctx, 5*time.Minute)
	defer lcancel()
	dial := func(account jid.JID, password string) *harness.Peer {
		p, err := harness.DialPeer(lctx, prosody.Addr(), prosody.CertFile(), jid.MustParse(account.String()+"/bench"), password)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(p.Close)
		return p
	}
	// Login i: account u<i> for Matrix user @mx<i>, behind taps[i]; its chats with bob<i>
	// (plaintext) and dave<i> (OMEMO).
	logins := make([]*loginRun, k)
	for i := range k {
		taps[i] = startTap(b, prosody)
		acc := jid.MustParse(prosody.CreateAccount(b, fmt.Sprintf("u%d", i), "secret"))
		bob := jid.MustParse(prosody.CreateAccount(b, fmt.Sprintf("bob%d", i), "secret"))
		dave := jid.MustParse(prosody.CreateAccount(b, fmt.Sprintf("dave%d", i), "secret"))
		user := id.UserID(fmt.Sprintf("@mx%d:localhost", i))
		if _, err := harness.ProvisionLogin(lctx, cfg, user, harness.LoginInput{
			JID: acc.String(), Password: "secret", Server: taps[i].Addr(), InsecureHost: "localhost",
		}); err != nil {
			b.Fatalf("login %d: %v", i, err)
		}
		bobC, daveC := dial(bob, "secret"), dial(dave, "secret")
		daveX := omemoPeer(lctx, b, daveC, dave, acc)
		l := &loginRun{tap: taps[i], account: acc.String(), user: user, cases: map[string]*sinkCase{
			"chat": {name: "chat", sender: bobC, build: plainChats(bobC, acc),
				raw: rawStanzas(acc, stanza.ChatMessage), tapFrom: bobC.JID.String(), capTo: bob.String(),
				receiver: bobC, fromBridge: fromAccount(acc, false), bodies: plainBodies},
			"chat-omemo": {name: "chat-omemo", sender: daveC, build: omemoMessages(daveC, daveX, acc, nil),
				raw: rawOMEMO(daveX, acc, nil), tapFrom: daveC.JID.String(), capTo: dave.String(),
				receiver: daveC, fromBridge: fromAccount(acc, true), bodies: omemoBodies(daveX, acc)},
		}}
		if slices.Contains(names, "room") {
			// A plaintext room of the login's with bob<i> and dave<i>, bob<i> writing.
			mxRoom, portalID, failed, err := harness.CreateGroup(lctx, cfg, user, acc.String(), "room", map[string]any{
				"participants": []string{bob.String(), dave.String()},
				"name":         map[string]string{"name": fmt.Sprintf("Logins bench %d", i)},
			})
			if err != nil || len(failed) != 0 {
				b.Fatalf("login %d create_group: %v, failed %v; unknown calls %v", i, err, failed, sink.Unknown())
			}
			room := jid.MustParse(strings.TrimPrefix(portalID, "muc:"))
			roomJoin(lctx, b, bobC, room, "bob")
			roomJoin(lctx, b, daveC, room, "dave")
			l.cases["room"] = &sinkCase{name: "room", portal: mxRoom.String(), room: room.String(), sender: bobC,
				build: plainGroupchats(bobC, room), raw: rawStanzas(room, stanza.GroupChatMessage),
				tapFrom: room.String() + "/bob", capTo: room.String(), receiver: bobC,
				fromBridge: fromOccupant(room, false, "bob", "dave"), bodies: plainBodies}
		}
		logins[i] = l
	}
	hsToken := hsTokenOf(b, cfg)
	m := &multiRun{rcv: rcv, sink: sink, asURL: cfg.AppserviceURL(), hsToken: hsToken,
		client: &http.Client{Timeout: time.Minute}, pid: br.PID(), logins: logins}
	self := os.Getpid()
	fmt.Printf("SINK logins: %d logins, each its own account, tap, contacts and portals; %d messages per login per phase, all logins at once; msg/s is the total\n", k, perLogin)
	for _, name := range names {
		// Each chat's portal first (through Prosody), and one event back (its state settled).
		for i, l := range logins {
			c := l.cases[name]
			if c == nil {
				b.Fatalf("MXOMEMO_SINK_LOGIN_CASES: no case %q (chat, chat-omemo, room)", name)
			}
			if room := m.warmUp(ctx, b, i, c); c.portal == "" {
				c.portal = room
			}
			m.warmUpMatrix(ctx, b, l, c)
		}
		for _, ph := range []struct {
			dir string
			run func() ([]time.Duration, time.Duration, float64)
		}{
			{"xmpp→matrix", func() ([]time.Duration, time.Duration, float64) { return m.xm(ctx, b, name, perLogin) }},
			{"matrix→xmpp", func() ([]time.Duration, time.Duration, float64) { return m.mx(ctx, b, name, perLogin) }},
		} {
			tag := fmt.Sprintf("sink-logins-%s-%s", name, ph.dir[:1]+ph.dir[strings.IndexRune(ph.dir, '→')+len("→"):][:1])
			prof := cpuProfile(b, cfg, tag)
			trace := traceDuring(b, cfg, tag, 8)
			test0 := procCPU(b, self)
			lat, wall, cpu := ph.run()
			prof()
			trace()
			test := (procCPU(b, self) - test0) / float64(len(lat))
			// Same columns as BenchmarkSinkThroughput's rows (no added latency, no room), the load
			// average after them.
			fmt.Printf("SINK %-10s %-12s %-9s %6d %6.0f %9s %9s %9s %10s %10s %10.0f %11s %10s %10.0f load %s\n",
				"logins-"+name, ph.dir, "burst-tap", len(lat), float64(len(lat))/wall.Seconds(),
				pctOf(lat, 0.5), pctOf(lat, 0.99), pctOf(lat, 1), "-", "-", cpu*1e6, "-", "-", test*1e6, loadAvg())
		}
	}
	fmt.Printf("SINK logins cpu-µs/msg: the bridge process's CPU per message over all logins; test-µs/msg this process's (taps, sink, peers), on the same %d cores\n", runtime.NumCPU())
	for i, t := range taps {
		toServer, toBridge := t.Translated()
		if t.Connections() != 1 {
			b.Errorf("login %d: %d connections through its tap, want 1", i, t.Connections())
		}
		if err := t.Err(); err != nil {
			b.Errorf("login %d's tap: %v", i, err)
		}
		fmt.Printf("SINK logins tap %d: acknowledgements translated: %d of the bridge's to Prosody, %d of Prosody's to the bridge\n", i, toServer, toBridge)
	}
}

// loginRun is one login of BenchmarkSinkTapLogins: its tap, its account and Matrix user, and
// its chats by case name.
type loginRun struct {
	tap     *xmpptap.Tap
	account string
	user    id.UserID
	cases   map[string]*sinkCase
}

// multiRun drives the phases of BenchmarkSinkTapLogins.
type multiRun struct {
	rcv     *sinkReceiver
	sink    *assink.Sink
	asURL   string
	hsToken string
	client  *http.Client
	pid     int
	logins  []*loginRun
	seq     int
}

// next makes n bodies (and stanza ids) with prefix, unique in the run.
func (m *multiRun) next(prefix string, n int) (ids, bodies []string) {
	for range n {
		m.seq++
		ids = append(ids, fmt.Sprintf("logins-%d", m.seq))
		bodies = append(bodies, fmt.Sprintf("%s %d %d", prefix, m.seq, time.Now().UnixNano()))
	}
	return ids, bodies
}

// warmUp sends messages of c through Prosody until one reaches the sink and returns its portal.
func (m *multiRun) warmUp(ctx context.Context, b *testing.B, i int, c *sinkCase) string {
	for try := 0; try < 60; try++ {
		ids, bodies := m.next(fmt.Sprintf("warm-up %d %s", i, c.name), 1)
		if err := c.build(ctx, b, ids, bodies)[0](ctx); err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Second)
		if a, ok := m.rcv.get(bodies[0]); ok {
			return a.Room
		}
	}
	b.Fatalf("login %d %s: no portal message in the sink after a minute; unknown calls %v", i, c.name, m.sink.Unknown())
	return ""
}

// warmUpMatrix pushes one event to c's portal and waits for the bridge's message to c's receiver.
func (m *multiRun) warmUpMatrix(ctx context.Context, b *testing.B, l *loginRun, c *sinkCase) {
	cur := c.receiver.Cursor()
	_, bodies := m.next("warm-up from matrix", 1)
	if _, err := m.push(ctx, l, c, bodies); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		for _, msg := range c.receiver.Received()[cur:] {
			if c.fromBridge(msg) {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatalf("%s of %s: the warm-up event did not reach %s", c.name, l.account, c.receiver.JID)
}

// push sends bodies to c's portal as one transaction from l's Matrix user.
func (m *multiRun) push(ctx context.Context, l *loginRun, c *sinkCase, bodies []string) (time.Time, error) {
	evts := make([]assink.Event, 0, len(bodies))
	now := time.Now()
	for _, body := range bodies {
		evts = append(evts, assink.Event{
			Type: "m.room.message", RoomID: c.portal, Sender: l.user.String(), EventID: m.sink.NewEventID(),
			Timestamp: now.UnixMilli(), Content: map[string]any{"msgtype": "m.text", "body": body},
		})
	}
	return now, m.sink.Push(ctx, m.client, m.asURL, m.hsToken, evts)
}

// xm injects n messages of each login's case name into its stream, all logins at once (one
// goroutine per tap), and waits for all of them in the sink: each login's once each, in order.
func (m *multiRun) xm(ctx context.Context, b *testing.B, name string, n int) (lat []time.Duration, wall time.Duration, cpu float64) {
	raws := make([][][]byte, len(m.logins))
	bodies := make([][]string, len(m.logins))
	prefix := make([]string, len(m.logins))
	var all []string
	for i, l := range m.logins {
		c := l.cases[name]
		build := c.raw(ctx, b)
		prefix[i] = fmt.Sprintf("xl%d-%s ", i, name)
		ids, bs := m.next(strings.TrimSpace(prefix[i]), n)
		// A 1:1 message keeps the bare JID it was sent to; a room's goes to the occupant's full JID.
		to, by := l.account, l.account
		if c.room != "" {
			to, by = l.tap.BoundJID(), c.room
		}
		for j := range n {
			raws[i] = append(raws[i], xmpptap.Readdress(build(ids[j], bs[j]), c.tapFrom, to, stanzaID(ids[j], by)))
		}
		bodies[i] = bs
		all = append(all, bs...)
	}
	k0 := m.rcv.count()
	sent := make([][]time.Time, len(m.logins))
	errs := make(chan error, len(m.logins))
	cpu0 := procCPU(b, m.pid)
	start := time.Now()
	for i, l := range m.logins {
		sent[i] = make([]time.Time, n)
		go func() {
			for j, raw := range raws[i] {
				sent[i][j] = time.Now()
				if err := l.tap.Inject(raw); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range m.logins {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	m.rcv.wait(b, all, 5*time.Minute)
	cpu = (procCPU(b, m.pid) - cpu0) / float64(len(all))
	got := m.rcv.since(k0)
	var last time.Time
	for i := range m.logins {
		var mine []string
		for _, a := range got {
			if strings.HasPrefix(a, prefix[i]) {
				mine = append(mine, a)
			}
		}
		if !slices.Equal(mine, bodies[i]) {
			b.Fatalf("login %d %s: the sink got %d injected messages, want %d once each in order", i, name, len(mine), n)
		}
		for j, body := range bodies[i] {
			a, _ := m.rcv.get(body)
			lat = append(lat, a.At.Sub(sent[i][j]))
			if a.At.After(last) {
				last = a.At
			}
		}
	}
	m.checkTaps(b)
	return lat, last.Sub(start), cpu
}

// mx pushes n Matrix events to each login's portal of case name (transactions of 50, one at a
// time per login, the logins at once) and takes the bridge's messages to each login's receiver
// out of that login's stream; then checks each login's are the events once each in order.
func (m *multiRun) mx(ctx context.Context, b *testing.B, name string, n int) (lat []time.Duration, wall time.Duration, cpu float64) {
	var (
		mu    sync.Mutex
		got   = make([][]tapped, len(m.logins))
		total int
		more  = make(chan struct{}, 1)
	)
	bodies := make([][]string, len(m.logins))
	// A room's reflection of each of the bridge's messages, as Prosody would send it, injected
	// back by one goroutine per login (the capture callback must not inject).
	reflect := make([]chan []byte, len(m.logins))
	stop := make(chan struct{})
	var reflectors sync.WaitGroup
	for i, l := range m.logins {
		c := l.cases[name]
		if c.room == "" {
			continue
		}
		from := c.room + "/" + bridgeNick(b, c)
		reflect[i] = make(chan []byte, n+64)
		reflectors.Go(func() {
			for k := 0; ; k++ {
				select {
				case raw := <-reflect[i]:
					if err := l.tap.Inject(xmpptap.Readdress(raw, from, l.tap.BoundJID(), stanzaID(fmt.Sprint("lr", i, "-", k), c.room))); err != nil {
						return
					}
				case <-stop:
					return
				}
			}
		})
	}
	for i, l := range m.logins {
		c := l.cases[name]
		_, bodies[i] = m.next(fmt.Sprintf("ml%d-%s", i, name), n)
		l.tap.Capture(func(raw []byte) bool {
			to := xmpptap.Attr(raw, "to")
			return (to == c.capTo || strings.HasPrefix(to, c.capTo+"/")) && (strings.Contains(string(raw), "<body") || strings.Contains(string(raw), "<encrypted"))
		}, func(raw []byte, at time.Time) {
			mu.Lock()
			got[i] = append(got[i], tapped{i, raw, at})
			total++
			mu.Unlock()
			if reflect[i] != nil {
				select {
				case reflect[i] <- raw:
				default:
				}
			}
			select {
			case more <- struct{}{}:
			default:
			}
		})
	}
	sent := make([]map[string]time.Time, len(m.logins))
	errs := make(chan error, len(m.logins))
	cpu0 := procCPU(b, m.pid)
	start := time.Now()
	for i, l := range m.logins {
		sent[i] = map[string]time.Time{}
		go func() {
			bs := bodies[i]
			for j := 0; j < len(bs); j += 50 {
				at, err := m.push(ctx, l, l.cases[name], bs[j:min(len(bs), j+50)])
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for _, body := range bs[j:min(len(bs), j+50)] {
					sent[i][body] = at
				}
				mu.Unlock()
			}
			errs <- nil
		}()
	}
	for range m.logins {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	want := n * len(m.logins)
	deadline := time.After(5 * time.Minute)
	for {
		mu.Lock()
		k := total
		mu.Unlock()
		if k >= want {
			break
		}
		select {
		case <-more:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			b.Fatalf("%d of %d Matrix messages left the bridge", k, want)
		}
	}
	cpu = (procCPU(b, m.pid) - cpu0) / float64(want)
	for _, l := range m.logins {
		l.tap.Capture(nil, nil)
	}
	// The reflections are the bridge's work too, but after its last message left.
	for i := range reflect {
		for deadline := time.Now().Add(time.Minute); len(reflect[i]) > 0 && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
	}
	close(stop)
	reflectors.Wait()
	m.checkTaps(b)
	mu.Lock()
	defer mu.Unlock()
	var last time.Time
	for i, l := range m.logins {
		c := l.cases[name]
		if len(got[i]) != n {
			b.Fatalf("login %d %s: the bridge sent %d messages, want %d", i, name, len(got[i]), n)
		}
		plain := make([]string, 0, n)
		for j, t := range got[i] {
			msg, err := harness.ParseMessage(t.raw)
			if err != nil {
				b.Fatal(err)
			}
			// The server stamps from; the tap read them before it could.
			msg.From, msg.At = l.tap.BoundJID(), t.at
			if c.room != "" {
				msg.From = c.room + "/" + bridgeNick(b, c)
			}
			if !c.fromBridge(msg) {
				b.Fatalf("login %d %s: the bridge's message %d is not what the case expects (type %q, OMEMO %v)", i, name, j, msg.Type, msg.OMEMO != nil)
			}
			body := c.bodies(ctx, b, []harness.ReceivedMessage{msg})[0]
			plain = append(plain, body)
			lat = append(lat, t.at.Sub(sent[i][body]))
			if t.at.After(last) {
				last = t.at
			}
		}
		if !slices.Equal(plain, bodies[i]) {
			b.Fatalf("login %d %s: the bridge's %d messages are not the %d events once each in order", i, name, len(plain), n)
		}
	}
	return lat, last.Sub(start), cpu
}

// checkTaps fails the run if a login's tap failed or its bridge connection was replaced (a
// resumption after injecting or swallowing is not translated, so the figures would not count).
func (m *multiRun) checkTaps(b *testing.B) {
	for i, l := range m.logins {
		if err := l.tap.Err(); err != nil {
			b.Fatalf("login %d's tap: %v", i, err)
		}
		if c := l.tap.Connections(); c != 1 {
			b.Fatalf("login %d reconnected through its tap (%d connections)", i, c)
		}
	}
}

// sinkReceiver keeps what the sink received: each body's arrival, and every body in order.
type sinkReceiver struct {
	mu      sync.Mutex
	arrived map[string]assink.Received
	order   []string
	changed chan struct{}
}

func newSinkReceiver(s *assink.Sink) *sinkReceiver {
	r := &sinkReceiver{arrived: map[string]assink.Received{}, changed: make(chan struct{}, 1)}
	go func() {
		for msg := range s.Messages {
			r.mu.Lock()
			r.arrived[msg.Body] = msg
			r.order = append(r.order, msg.Body)
			r.mu.Unlock()
			select {
			case r.changed <- struct{}{}:
			default:
			}
		}
	}()
	return r
}

func (r *sinkReceiver) get(body string) (assink.Received, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.arrived[body]
	return a, ok
}

func (r *sinkReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.order)
}

func (r *sinkReceiver) since(k int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.order[k:])
}

// wait waits until every one of bodies has arrived.
func (r *sinkReceiver) wait(b *testing.B, bodies []string, d time.Duration) {
	deadline := time.After(d)
	for {
		r.mu.Lock()
		n := 0
		for _, body := range bodies {
			if _, ok := r.arrived[body]; ok {
				n++
			}
		}
		r.mu.Unlock()
		if n == len(bodies) {
			return
		}
		select {
		case <-r.changed:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			b.Fatalf("%d of %d messages reached the sink", n, len(bodies))
		}
	}
}

// pctOf is the q quantile of d (sorted in place), rounded to 0.1 ms.
func pctOf(d []time.Duration, q float64) string {
	if len(d) == 0 {
		return "-"
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(float64(len(d))*q))].Round(100 * time.Microsecond).String()
}

// loadAvg is the machine's 1, 5 and 15 minute load averages, joined by slashes.
func loadAvg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "?"
	}
	return f[0] + "/" + f[1] + "/" + f[2]
}

// sinkDBConns applies MXOMEMO_SINK_DB_CONNS=n, the bridge's SQLite pool (max_open_conns and
// idle), to compare writers waiting in database/sql for a connection with writers waiting in
// SQLite's busy handler (docs/scaling.md, "Several logins at once").
func sinkDBConns(b *testing.B, cfg *harness.BridgeConfig) {
	if os.Getenv("MXOMEMO_SINK_DB_CONNS") == "" {
		return
	}
	conns := envInt(b, "MXOMEMO_SINK_DB_CONNS", 5)
	if cfg.Set == nil {
		cfg.Set = map[string]any{}
	}
	cfg.Set["database.max_open_conns"], cfg.Set["database.max_idle_conns"] = conns, conns
	fmt.Printf("SINK the bridge's SQLite pool: %d connection(s) (MXOMEMO_SINK_DB_CONNS)\n", conns)
}

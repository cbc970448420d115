package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/assink"
	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

// BenchmarkSinkThroughput is the bridge's own ceiling for plaintext 1:1 messages (`make
// bench-sink`, not part of the test suite): the real bridge binary (SQLite) and a real Prosody,
// with a MINIMAL APPSERVICE SINK (e2e/internal/assink) in place of a homeserver, so that the
// homeserver's cost is out of the figures. Per direction it measures the latency from the
// sender's send to the receiver's read at a fixed rate (MXOMEMO_SINK_RATE msg/s, default 200;
// it includes Prosody's hop and, Matrix → XMPP, the bridge answering the transaction), and the
// throughput of a burst of MXOMEMO_SINK_N messages (default 2000) sent as fast as the sender can:
// XMPP → Matrix from one contact, Matrix → XMPP as transactions of up to 50 events, one at a time,
// as a homeserver with a backlog sends them.
func BenchmarkSinkThroughput(b *testing.B) {
	burst := envInt(b, "MXOMEMO_SINK_N", 2000)
	rate := envInt(b, "MXOMEMO_SINK_RATE", 200)
	latN := rate * 5
	bin := bridgeBin(b)
	prosody := testenv.StartProsody(b, testenv.ProsodyOptions{})
	hsPort := testenv.FreePort(b)
	cfg := &harness.BridgeConfig{
		Dir:            b.TempDir(),
		HomeserverURL:  fmt.Sprintf("http://127.0.0.1:%d", hsPort),
		Domain:         "localhost",
		AppservicePort: testenv.FreePort(b),
		LogLevel:       "info",
	}
	profileDebug(cfg)
	ctx := context.Background()
	if err := harness.WriteConfig(ctx, bin, cfg); err != nil {
		b.Fatal(err)
	}
	sink, err := assink.Start(hsPort, "localhost", "@xmppbot:localhost")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(sink.Close)
	br := &harness.Bridge{Bin: bin, Config: cfg}
	b.Cleanup(func() {
		if err := br.Stop(); err != nil {
			b.Errorf("bridge: %v", err)
		}
		if b.Failed() {
			b.Logf("sink: unknown calls %v\n--- bridge log (last 20 kB) ---\n%s", sink.Unknown(), br.Tail(20000))
		}
	})
	if err := br.Start(ctx); err != nil {
		b.Fatal(err)
	}
	alice := jid.MustParse(prosody.CreateAccount(b, "alice", "alice-secret"))
	prosody.CreateAccount(b, "bob", "bob-secret")
	carol := jid.MustParse(prosody.CreateAccount(b, "carol", "carol-secret"))
	user := id.UserID("@mx:localhost")
	lctx, lcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer lcancel()
	if _, err := harness.ProvisionLogin(lctx, cfg, user, harness.LoginInput{
		JID: alice.String(), Password: "alice-secret", Server: prosody.Addr(), InsecureHost: "localhost",
	}); err != nil {
		b.Fatal(err)
	}
	bobC, err := harness.DialPeer(lctx, prosody.Addr(), prosody.CertFile(), jid.MustParse("bob@localhost/bench"), "bob-secret")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(bobC.Close)
	// carol is a plain XMPP client: bob → carol is the XMPP server's own hop, the baseline that
	// the bridge's added latency is read against.
	carolC, err := harness.DialPeer(lctx, prosody.Addr(), prosody.CertFile(), jid.MustParse("carol@localhost/bench"), "carol-secret")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(carolC.Close)

	// The sink's receiver: every body the bridge sends, with its arrival time.
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	arrival := make(chan struct{}, 1)
	var room string
	go func() {
		for m := range sink.Messages {
			mu.Lock()
			arrived[m.Body] = m.At
			if room == "" && m.Sender != "" && m.Sender != "@xmppbot:localhost" {
				room = m.Room
			}
			mu.Unlock()
			select {
			case arrival <- struct{}{}:
			default:
			}
		}
	}()
	waitArrived := func(bodies []string, d time.Duration) {
		deadline := time.After(d)
		for {
			mu.Lock()
			n := 0
			for _, body := range bodies {
				if _, ok := arrived[body]; ok {
					n++
				}
			}
			mu.Unlock()
			if n == len(bodies) {
				return
			}
			select {
			case <-arrival:
			case <-time.After(200 * time.Millisecond):
			case <-deadline:
				b.Fatalf("%d of %d messages reached the sink", n, len(bodies))
			}
		}
	}
	// Warm-up: the first message makes the portal (the login's session may still be coming up).
	for i := 0; ; i++ {
		body := "warm-up " + strconv.Itoa(i)
		if err := bobC.SendChat(ctx, alice, "", "", body); err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Second)
		mu.Lock()
		_, ok := arrived[body]
		r := room
		mu.Unlock()
		if ok && r != "" {
			break
		}
		if i == 60 {
			b.Fatalf("no portal message in the sink after a minute; unknown calls %v", sink.Unknown())
		}
	}
	mu.Lock()
	portal := room
	mu.Unlock()
	hsToken := hsTokenOf(b, cfg)
	client := &http.Client{Timeout: time.Minute}
	pid := br.PID()

	// XMPP → Matrix at a fixed rate: latency.
	xmLat := func(prefix string, n, perSec int) ([]time.Duration, time.Duration, float64) {
		bodies := make([]string, n)
		sent := make([]time.Time, n)
		cpu0 := procCPU(b, pid)
		start := time.Now()
		for i := range n {
			if perSec > 0 {
				if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(perSec))); d > 0 {
					time.Sleep(d)
				}
			}
			bodies[i] = fmt.Sprintf("%s %d %d", prefix, i, time.Now().UnixNano())
			sent[i] = time.Now()
			if err := bobC.SendChat(ctx, alice, "", "", bodies[i]); err != nil {
				b.Fatal(err)
			}
		}
		waitArrived(bodies, 5*time.Minute)
		var lat []time.Duration
		var last time.Time
		mu.Lock()
		for i, body := range bodies {
			lat = append(lat, arrived[body].Sub(sent[i]))
			if arrived[body].After(last) {
				last = arrived[body]
			}
		}
		mu.Unlock()
		return lat, last.Sub(start), (procCPU(b, pid) - cpu0) / float64(n)
	}
	// Matrix → XMPP: transactions of up to batch events, at perSec events per second (0: as fast
	// as the bridge answers).
	mxLat := func(prefix string, n, perSec, batch int) ([]time.Duration, time.Duration, float64) {
		cur := bobC.Cursor()
		bodies := make([]string, n)
		sent := map[string]time.Time{}
		cpu0 := procCPU(b, pid)
		start := time.Now()
		for i := 0; i < n; i += batch {
			if perSec > 0 {
				if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(perSec))); d > 0 {
					time.Sleep(d)
				}
			}
			var evts []assink.Event
			now := time.Now()
			for j := i; j < min(n, i+batch); j++ {
				bodies[j] = fmt.Sprintf("%s %d %d", prefix, j, now.UnixNano())
				sent[bodies[j]] = now
				evts = append(evts, assink.Event{
					Type: "m.room.message", RoomID: portal, Sender: user.String(), EventID: sink.NewEventID(),
					Timestamp: now.UnixMilli(), Content: map[string]any{"msgtype": "m.text", "body": bodies[j]},
				})
			}
			if err := sink.Push(ctx, client, cfg.AppserviceURL(), hsToken, evts); err != nil {
				b.Fatal(err)
			}
		}
		want := map[string]bool{}
		for _, body := range bodies {
			want[body] = true
		}
		deadline := time.Now().Add(5 * time.Minute)
		for {
			got := map[string]time.Time{}
			for _, m := range bobC.Received()[cur:] {
				if want[m.Body] && !m.Carbon {
					got[m.Body] = m.At
				}
			}
			if len(got) == n {
				var lat []time.Duration
				var last time.Time
				for body, at := range got {
					lat = append(lat, at.Sub(sent[body]))
					if at.After(last) {
						last = at
					}
				}
				return lat, last.Sub(start), (procCPU(b, pid) - cpu0) / float64(n)
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d Matrix messages reached bob", len(got), n)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	fmt.Printf("SINK bridge binary, real Prosody, MINIMAL APPSERVICE SINK instead of a homeserver; plaintext 1:1, SQLite\n")
	fmt.Printf("SINK (xmpp→xmpp: Prosody alone, client to client, the baseline of the added latency; cpu is the bridge process's)\n")
	fmt.Printf("SINK %-14s %-8s %7s %9s %9s %9s %10s %12s\n", "direction", "mode", "msgs", "msg/s", "p50", "p99", "max", "cpu-µs/msg")
	report := func(dir, mode string, lat []time.Duration, wall time.Duration, cpu float64) {
		slices.Sort(lat)
		p := func(q float64) time.Duration { return lat[min(len(lat)-1, int(float64(len(lat))*q))] }
		fmt.Printf("SINK %-14s %-8s %7d %9.0f %9s %9s %10s %12.0f\n", dir, mode, len(lat), float64(len(lat))/wall.Seconds(),
			p(0.5).Round(100*time.Microsecond), p(0.99).Round(100*time.Microsecond), lat[len(lat)-1].Round(100*time.Microsecond), cpu*1e6)
	}
	{
		cur := carolC.Cursor()
		sent := map[string]time.Time{}
		start := time.Now()
		for i := range latN {
			if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); d > 0 {
				time.Sleep(d)
			}
			body := fmt.Sprintf("baseline %d", i)
			sent[body] = time.Now()
			if err := bobC.SendChat(ctx, carol, "", "", body); err != nil {
				b.Fatal(err)
			}
		}
		wctx, wcancel := context.WithTimeout(ctx, time.Minute)
		if _, _, err := carolC.WaitMessage(wctx, cur, bodyIs(fmt.Sprintf("baseline %d", latN-1))); err != nil {
			b.Fatal(err)
		}
		wcancel()
		var lat []time.Duration
		for _, m := range carolC.Received()[cur:] {
			if t, ok := sent[m.Body]; ok {
				lat = append(lat, m.At.Sub(t))
			}
		}
		report("xmpp→xmpp", fmt.Sprintf("%d/s", rate), lat, time.Since(start), 0)
	}
	prof := cpuProfile(b, cfg, "sink-xm-rate")
	lat, wall, cpu := xmLat("xm-rate", latN, rate)
	prof()
	report("xmpp→matrix", fmt.Sprintf("%d/s", rate), lat, wall, cpu)
	prof = cpuProfile(b, cfg, "sink-mx-rate")
	lat, wall, cpu = mxLat("mx-rate", latN, rate, 1)
	prof()
	report("matrix→xmpp", fmt.Sprintf("%d/s", rate), lat, wall, cpu)
	prof = cpuProfile(b, cfg, "sink-xm-burst")
	lat, wall, cpu = xmLat("xm-burst", burst, 0)
	prof()
	report("xmpp→matrix", "burst", lat, wall, cpu)
	prof = cpuProfile(b, cfg, "sink-mx-burst")
	lat, wall, cpu = mxLat("mx-burst", burst, 0, 50)
	prof()
	report("matrix→xmpp", "burst", lat, wall, cpu)
	if u := sink.Unknown(); len(u) > 0 {
		fmt.Printf("SINK calls answered with {}: %v\n", u)
	}
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

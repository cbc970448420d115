package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
	"github.com/mxomemo/xmpp-bridge/metrics"
	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
)

// BenchmarkBridgeCPU is the bridge process's CPU time per bridged OMEMO message, each way, in
// the default setup: Prosody, Dendrite, the bridge with a Megolm-encrypted portal. The
// contact is an OMEMO 2 device (our omemoxmpp client in this process); the Matrix side is
// matrix-nio. b.N messages go each way after a warm-up; the bridge's utime+stime (from /proc,
// every thread) over each burst, less its idle rate over the same wall time, divided by b.N,
// is reported as cpu-µs/in-msg (XMPP → Matrix: stanza, OMEMO decrypt in the inbox transaction,
// bridgev2, Megolm encrypt, HTTP to Dendrite) and cpu-µs/out-msg (Matrix → XMPP: Megolm
// decrypt, bridgev2, OMEMO encrypt, stanza). The homeserver's and the peers' CPU is not counted.
// allocs/in-msg and allocs/out-msg are the process's heap allocations per message over the
// same bursts (go_memstats_mallocs_total on its metrics listener), steady under load.
// Sub-benchmarks sqlite and postgres run the same on each database (PostgreSQL started by the
// harness, one database for the bridge).
// Run with a fixed count: go test -tags 'goolm integration' -run '^$' -bench BridgeCPU -benchtime 300x ./e2e/
func BenchmarkBridgeCPU(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) { benchBridgeCPU(b, backend) })
	}
}

func benchBridgeCPU(b *testing.B, backend string) {
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", testenv.FreePort(b))
	s := newStack(b, backend, func(c *harness.BridgeConfig) {
		c.EncryptionDefault, c.LogLevel = true, "info"
		profileDebug(c)
		if c.Network == nil {
			c.Network = map[string]any{}
		}
		c.Network["metrics.enabled"] = true
		c.Network["metrics.listen"] = strings.TrimSuffix(strings.TrimPrefix(metricsURL, "http://"), "/metrics")
	})
	alice, alicePW := s.account(b, "calice")
	bob, bobPW := s.account(b, "cbob")
	u := s.matrixUser(b, "mxcpu")
	nio := testenv.StartMatrixPeer(b, s.dendrite, u.UserID().String(), "matrix-mxcpu-pw")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	mgmt := s.loginUser(ctx, b, u, alice, alicePW)
	bobC := s.peer(b, bob, bobPW, "bench")
	xc := omemoPeer(ctx, b, bobC, bob, alice)

	send := func(text string) {
		out, err := xc.Encrypt(ctx, alice, text)
		if err != nil {
			b.Fatal(err)
		}
		r, err := omemoxmpp.BuildMessage(stanza.Message{To: alice, Type: stanza.ChatMessage}, out)
		if err != nil {
			b.Fatal(err)
		}
		if err := bobC.Session.Send(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	// Warm-up: the portal, the ghost, both OMEMO sessions and the Megolm session exist.
	send("warm-up from xmpp")
	room, err := u.FindRoomWith(ctx, s.ghost(bob), mgmt)
	if err != nil {
		b.Fatal(err)
	}
	nio.WaitMessage(b, string(room), "warm-up from xmpp", stepTimeout)
	cur := bobC.Cursor()
	nio.Send(b, string(room), "warm-up from matrix")
	cur = waitOMEMOFrom(ctx, b, bobC, alice, cur, 1)

	pid := s.bridge.PID()
	idle := idleCPURate(b, pid, 3*time.Second)
	n := b.N
	b.ResetTimer()

	// XMPP → Matrix: the contact's messages are encrypted first, then sent in one burst.
	// Allocation profiles around each burst (with MXOMEMO_BENCH_PROFILE): go tool pprof
	// -sample_index=alloc_objects -base <name>-0.pprof <name>-1.pprof.
	saveProfile(b, s.cfg, "allocs", backend+"-allocs-in-0.pprof")
	prof := cpuProfile(b, s.cfg, backend+"-cpu-in")
	start, cpu0, mallocs0 := time.Now(), procCPU(b, pid), mallocs(ctx, b, metricsURL)
	for i := range n {
		send(fmt.Sprintf("in %d of %d", i+1, n))
	}
	nio.WaitMessage(b, string(room), fmt.Sprintf("in %d of %d", n, n), 5*time.Minute)
	in := (procCPU(b, pid) - cpu0 - idle*time.Since(start).Seconds()) / float64(n)
	inAllocs := (mallocs(ctx, b, metricsURL) - mallocs0) / float64(n)
	prof()
	saveProfile(b, s.cfg, "allocs", backend+"-allocs-in-1.pprof")

	// Matrix → XMPP: matrix-nio sends Megolm messages; each reaches the contact OMEMO-encrypted.
	saveProfile(b, s.cfg, "allocs", backend+"-allocs-out-0.pprof")
	prof = cpuProfile(b, s.cfg, backend+"-cpu-out")
	start, cpu0, mallocs0 = time.Now(), procCPU(b, pid), mallocs(ctx, b, metricsURL)
	for i := range n {
		nio.Send(b, string(room), fmt.Sprintf("out %d of %d", i+1, n))
	}
	waitOMEMOFrom(ctx, b, bobC, alice, cur, n)
	out := (procCPU(b, pid) - cpu0 - idle*time.Since(start).Seconds()) / float64(n)
	outAllocs := (mallocs(ctx, b, metricsURL) - mallocs0) / float64(n)
	prof()
	saveProfile(b, s.cfg, "allocs", backend+"-allocs-out-1.pprof")
	b.StopTimer()

	b.ReportMetric(in*1e6, "cpu-µs/in-msg")
	b.ReportMetric(out*1e6, "cpu-µs/out-msg")
	b.ReportMetric(inAllocs, "allocs/in-msg")
	b.ReportMetric(outAllocs, "allocs/out-msg")
	b.ReportMetric(idle*1e3, "idle-cpu-ms/s")
}

// mallocs is the bridge's count of heap allocations so far (the Go collector's
// go_memstats_mallocs_total on its metrics listener): unlike CPU time, it does not
// grow with the machine's load. The idle process's own allocations over a burst are
// few (no timers per login).
func mallocs(ctx context.Context, t testing.TB, url string) float64 {
	t.Helper()
	s, err := metrics.Scrape(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := s.Get("go_memstats_mallocs_total")
	if !ok {
		t.Fatalf("no go_memstats_mallocs_total at %s", url)
	}
	return v
}

// omemoPeer gives the contact an OMEMO 2 device on its session and waits until it sees the
// bridge's device in the account's device list.
func omemoPeer(ctx context.Context, t testing.TB, p *harness.Peer, own, account jid.JID) *omemoxmpp.Client {
	t.Helper()
	store := omemo.NewMemoryStore()
	m := omemo.NewManager(store, own.String(), omemo.Options{PreKeys: 20})
	if err := m.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	xc, err := omemoxmpp.NewSession(m, store, p.Session, omemoxmpp.Options{Label: "bench", Versions: []omemo.Version{omemo.V2}})
	if err != nil {
		t.Fatal(err)
	}
	// ejabberd now and then answers a fresh account's first device-list publish with
	// item-not-found (seen in TestMUCOMEMO/ejabberd, 1 run in 5); the bridge retries its own
	// announcement, and so does this peer, a few times.
	for try := 1; ; try++ {
		err := xc.Announce(ctx)
		if err == nil {
			break
		}
		if try == 3 {
			t.Fatal(err)
		}
		t.Logf("announcing %s's OMEMO device, try %d: %v", own, try, err)
		time.Sleep(time.Second)
	}
	deadline := time.Now().Add(stepTimeout)
	for {
		set, err := xc.FetchDevices(ctx, account)
		if err == nil && len(set) > 0 {
			return xc
		}
		if time.Now().After(deadline) {
			t.Fatalf("no OMEMO device of %s: %v", account, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// waitOMEMOFrom waits until p has received n more OMEMO messages with a payload from account
// after cursor (heartbeats and key transports have none), and returns the new cursor.
func waitOMEMOFrom(ctx context.Context, t testing.TB, p *harness.Peer, account jid.JID, cursor, n int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for got := 0; got < n; got++ {
		_, next, err := p.WaitMessage(ctx, cursor, func(m harness.ReceivedMessage) bool {
			return !m.Carbon && m.OMEMO != nil && m.OMEMO.Payload != nil && strings.HasPrefix(m.From, account.String()+"/")
		})
		if err != nil {
			t.Fatalf("%d of %d OMEMO messages from %s: %v", got, n, account, err)
		}
		cursor = next
	}
	return cursor
}

// procCPU is the user+system CPU time of process pid (all its threads) in seconds.
func procCPU(t testing.TB, pid int) float64 {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("bad /proc/%d/stat: %q", pid, raw)
	}
	return (utime + stime) / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on every Linux architecture Go
// runs on here.
const clockTicks = 100

// idleCPURate is the process's CPU seconds per wall second while nothing is bridged.
func idleCPURate(t testing.TB, pid int, d time.Duration) float64 {
	cpu, _ := idleRates(t, pid, d)
	return cpu
}

// idleRates is the process's CPU seconds and its threads' context switches (voluntary and not:
// every time a thread sleeps or is put off the CPU, i.e. the process's wake-ups) per wall second
// over d.
func idleRates(t testing.TB, pid int, d time.Duration) (cpu, switches float64) {
	t.Helper()
	start, cpu0, sw0 := time.Now(), procCPU(t, pid), procSwitches(t, pid)
	time.Sleep(d)
	wall := time.Since(start).Seconds()
	return (procCPU(t, pid) - cpu0) / wall, max(0, procSwitches(t, pid)-sw0) / wall
}

// procSwitches is the sum of the context switches of the process's threads now (a thread that
// exits takes its count with it; Go's threads rarely exit).
func procSwitches(t testing.TB, pid int) float64 {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, task := range tasks {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, task.Name()))
		if err != nil {
			continue // the thread exited meanwhile
		}
		for _, line := range strings.Split(string(raw), "\n") {
			f := strings.Fields(line)
			if len(f) == 2 && (f[0] == "voluntary_ctxt_switches:" || f[0] == "nonvoluntary_ctxt_switches:") {
				v, _ := strconv.ParseFloat(f[1], 64)
				n += v
			}
		}
	}
	return n
}

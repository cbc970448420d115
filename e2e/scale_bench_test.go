package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
	"github.com/mxomemo/xmpp-bridge/metrics"
)

// BenchmarkScale is `make bench-scale` (not part of the test suite): it logs N XMPP accounts in
// through the provisioning API, N in steps (MXOMEMO_SCALE_N, default "50,200,500"), against a real
// Prosody and Dendrite with the bridge on SQLite, and after each step, once every login reports
// CONNECTED and the process has settled, prints the bridge process's RSS, Go heap, goroutines,
// threads, open fds, idle CPU and wake-ups (its threads' context switches) over a window
// (MXOMEMO_SCALE_IDLE, default 20s) and the login time.
// At the end it fits each figure linearly against N and extrapolates to 10 000 logins.
// Run it once per invocation (-benchtime 1x); the figures are of one run on a shared machine.
func BenchmarkScale(b *testing.B) {
	steps := scaleSteps(b)
	idle := 20 * time.Second
	if v := os.Getenv("MXOMEMO_SCALE_IDLE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		idle = d
	}
	const parallel = 8
	bin := bridgeBin(b)
	prosody := testenv.StartProsody(b, testenv.ProsodyOptions{})
	hsPort, metricsPort := testenv.FreePort(b), testenv.FreePort(b)
	cfg := &harness.BridgeConfig{
		Dir:            b.TempDir(),
		HomeserverURL:  fmt.Sprintf("http://127.0.0.1:%d", hsPort),
		Domain:         "localhost",
		AppservicePort: testenv.FreePort(b),
		LogLevel:       "info",
		// The shipped default: the harness's "all" makes the bot create a management room for
		// every provisioned login to post its CONNECTED notice, which measures the homeserver.
		Set: map[string]any{"bridge.bridge_status_notices": "errors"},
		Network: map[string]any{
			"metrics.enabled": true,
			"metrics.listen":  fmt.Sprintf("127.0.0.1:%d", metricsPort),
		},
	}
	// MXOMEMO_SCALE_OWN_PRESENCE sets presence.own (e.g. "available": no presence reads at all), to
	// tell the shared presence poller's wake-ups from the rest.
	if v := os.Getenv("MXOMEMO_SCALE_OWN_PRESENCE"); v != "" {
		cfg.Network["presence.own"] = v
	}
	// The debug endpoints (loopback, behind the provisioning secret) also give the forced GC
	// after each idle window (liveHeap).
	cfg.Set["provisioning.debug_endpoints"] = true
	ctx := context.Background()
	if err := harness.WriteConfig(ctx, bin, cfg); err != nil {
		b.Fatal(err)
	}
	testenv.StartDendrite(b, testenv.DendriteOptions{Registration: cfg.RegistrationPath(), Port: hsPort})
	br := &harness.Bridge{Bin: bin, Config: cfg}
	b.Cleanup(func() {
		if err := br.Stop(); err != nil {
			b.Errorf("bridge: %v", err)
		}
		if b.Failed() {
			b.Logf("--- bridge log (last 20 kB) ---\n%s", br.Tail(20000))
		}
	})
	if err := br.Start(ctx); err != nil {
		b.Fatal(err)
	}
	pid := br.PID()
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)

	accountsDir := filepath.Join(prosody.DataDir(), "localhost", "accounts")
	if err := os.MkdirAll(accountsDir, 0o755); err != nil {
		b.Fatal(err)
	}
	var rows []scaleRow
	time.Sleep(3 * time.Second)
	rows = append(rows, measureScale(b, pid, metricsURL, 0, idle, nil, 0))
	settle(b, cfg, pid, metricsURL, &rows[0])
	printScaleRow(rows[0], true)
	done := 0
	for _, n := range steps {
		for i := done; i < n; i++ {
			if err := writeProsodyAccount(accountsDir, scaleLocalpart(i), scalePassword(i)); err != nil {
				b.Fatal(err)
			}
		}
		cpu0 := procCPU(b, pid)
		durations := make([]time.Duration, n-done)
		var wg sync.WaitGroup
		var failMu sync.Mutex
		var failures []string
		next := make(chan int)
		for range parallel {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					lctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
					start := time.Now()
					_, err := harness.ProvisionLogin(lctx, cfg, id.NewUserID("scale"+strconv.Itoa(i), "localhost"), harness.LoginInput{
						JID: scaleLocalpart(i) + "@localhost", Password: scalePassword(i), Server: prosody.Addr(), InsecureHost: "localhost",
					})
					cancel()
					durations[i-done] = time.Since(start)
					if err != nil {
						failMu.Lock()
						failures = append(failures, fmt.Sprintf("login %d: %v", i, err))
						failMu.Unlock()
					}
				}
			}()
		}
		phase := time.Now()
		for i := done; i < n; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
		if len(failures) > 0 {
			b.Fatalf("%d of %d logins failed: %s", len(failures), n-done, strings.Join(failures[:min(5, len(failures))], "; "))
		}
		// Every login is connected (its XMPP session up), not only stored.
		waitConnected(b, metricsURL, n)
		phaseWall := time.Since(phase)
		loginCPU := (procCPU(b, pid) - cpu0) / float64(n-done)
		time.Sleep(5 * time.Second) // the logins' first fetches (roster, archive, PEP) settle
		row := measureScale(b, pid, metricsURL, n, idle, durations, loginCPU)
		row.phase = phaseWall
		saveProfile(b, cfg, "heap", fmt.Sprintf("scale-heap-%d.pprof", n))
		settle(b, cfg, pid, metricsURL, &row)
		rows = append(rows, row)
		printScaleRow(row, false)
		saveProfile(b, cfg, "goroutine?debug=1", fmt.Sprintf("scale-goroutines-%d.txt", n))
		saveProfile(b, cfg, "heap?gc=1", fmt.Sprintf("scale-heap-live-%d.pprof", n))
		done = n
	}
	printScaleFit(rows)
	last := rows[len(rows)-1]
	b.ReportMetric(float64(last.n), "logins")
	b.ReportMetric(slope(rows, func(r scaleRow) float64 { return r.rssKB }), "rss-kB/login")
	b.ReportMetric(slope(rows, func(r scaleRow) float64 { return r.goroutines }), "goroutines/login")
}

// scaleRow is the bridge process after n logins.
type scaleRow struct {
	n                                  int
	rssKB, heapKB, goroutines, threads float64
	stackKB                            float64 // goroutine stacks in use
	liveKB                             float64 // heap in use right after a forced GC (settle)
	settledRSSKB, settledStackKB       float64 // RSS and stacks after settle's three GCs
	fds                                float64
	idleCPU                            float64 // % of one core
	idleWakes                          float64 // context switches of the process's threads per second
	settledIdleCPU, settledWakes       float64 // the same after settle
	loginP50, loginP99, loginMax       time.Duration
	loginCPUms                         float64 // process CPU per login during the login phase
	phase                              time.Duration
	connected                          float64
}

func measureScale(b *testing.B, pid int, metricsURL string, n int, idle time.Duration, durations []time.Duration, loginCPU float64) scaleRow {
	b.Helper()
	r := scaleRow{n: n, loginCPUms: loginCPU * 1000}
	cpu, switches := idleRates(b, pid, idle)
	r.idleCPU, r.idleWakes = cpu*100, switches
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			r.rssKB, _ = strconv.ParseFloat(f[1], 64)
		case "Threads:":
			r.threads, _ = strconv.ParseFloat(f[1], 64)
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		b.Fatal(err)
	}
	r.fds = float64(len(fds))
	ctx, cancel := stepCtx()
	defer cancel()
	s, err := metrics.Scrape(ctx, metricsURL)
	if err != nil {
		b.Fatal(err)
	}
	r.goroutines, _ = s.Get("go_goroutines")
	heap, _ := s.Get("go_memstats_heap_inuse_bytes")
	r.heapKB = heap / 1024
	stack, _ := s.Get("go_memstats_stack_inuse_bytes")
	r.stackKB = stack / 1024
	r.connected, _ = s.Get(metrics.Namespace + "_logins_connected")
	if len(durations) > 0 {
		d := slices.Clone(durations)
		slices.Sort(d)
		r.loginP50 = d[len(d)/2]
		r.loginP99 = d[min(len(d)-1, int(math.Ceil(float64(len(d))*0.99))-1)]
		r.loginMax = d[len(d)-1]
	}
	return r
}

// settle forces three garbage collections in the bridge, a second apart (bridgev2's debug pprof
// heap endpoint with gc=1: what the runtime's own periodic GC, every 2 minutes, does over about
// six idle minutes), waits for the scavenger to return freed memory, and reads the process again:
// the Go heap in use right after the first GC (what the logins hold, without the garbage the login
// phase left), and RSS, goroutine stacks in use and heap after the last (each GC halves a stack
// that uses less than a quarter of itself). The row's other columns are read before it.
func settle(b *testing.B, c *harness.BridgeConfig, pid int, metricsURL string, r *scaleRow) {
	b.Helper()
	for i := range 3 {
		req, err := http.NewRequest(http.MethodGet, c.AppserviceURL()+"/debug/pprof/heap?gc=1", nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+c.ProvisioningSecret)
		resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
		if err != nil {
			b.Fatalf("forced GC: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("forced GC: %s", resp.Status)
		}
		if i == 0 {
			r.liveKB = scrapeGauge(b, metricsURL, "go_memstats_heap_inuse_bytes") / 1024
		}
		time.Sleep(time.Second)
	}
	time.Sleep(10 * time.Second)
	r.settledRSSKB = procStatusKB(b, pid, "VmRSS:")
	r.settledStackKB = scrapeGauge(b, metricsURL, "go_memstats_stack_inuse_bytes") / 1024
	// The idle window again, now that the login phase's garbage is collected and the scavenger
	// has returned it: what an idle instance does in the long run.
	cpu, switches := idleRates(b, pid, settleIdle)
	r.settledIdleCPU, r.settledWakes = cpu*100, switches
}

// settleIdle is the idle window after settle.
const settleIdle = 20 * time.Second

func scrapeGauge(b *testing.B, metricsURL, name string) float64 {
	b.Helper()
	ctx, cancel := stepCtx()
	defer cancel()
	s, err := metrics.Scrape(ctx, metricsURL)
	if err != nil {
		b.Fatal(err)
	}
	v, _ := s.Get(name)
	return v
}

func procStatusKB(b *testing.B, pid int, field string) float64 {
	b.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return 0
}

// waitConnected waits until the bridge's logins_connected gauge reaches n.
func waitConnected(b *testing.B, metricsURL string, n int) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		ctx, cancel := stepCtx()
		s, err := metrics.Scrape(ctx, metricsURL)
		cancel()
		if err == nil {
			if c, _ := s.Get(metrics.Namespace + "_logins_connected"); int(c) >= n {
				return
			} else if time.Now().After(deadline) {
				b.Fatalf("%d of %d logins connected after 10 minutes", int(c), n)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func printScaleRow(r scaleRow, header bool) {
	if header {
		fmt.Printf("SCALE %6s %9s %9s %9s %9s %9s %9s %10s %7s %6s %9s %8s %8s %9s %10s %10s %10s %12s %8s\n",
			"logins", "rss-MB", "heap-MB", "live-MB", "stack-MB", "rss-set", "stack-set", "goroutines", "threads", "fds", "idle-cpu%", "wakes/s", "cpu-set%", "wakes-set", "login-p50", "login-p99", "login-max", "cpu-ms/login", "phase-s")
	}
	fmt.Printf("SCALE %6d %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %10.0f %7.0f %6.0f %9.2f %8.1f %8.2f %9.1f %10s %10s %10s %12.1f %8.1f\n",
		r.n, r.rssKB/1024, r.heapKB/1024, r.liveKB/1024, r.stackKB/1024, r.settledRSSKB/1024, r.settledStackKB/1024, r.goroutines, r.threads, r.fds, r.idleCPU, r.idleWakes, r.settledIdleCPU, r.settledWakes,
		r.loginP50.Round(time.Millisecond), r.loginP99.Round(time.Millisecond), r.loginMax.Round(time.Millisecond),
		r.loginCPUms, r.phase.Seconds())
}

// printScaleFit prints the least-squares line of each figure against N: the per-login slope, the
// intercept, and the value extrapolated to 10 000 logins.
func printScaleFit(rows []scaleRow) {
	figures := []struct {
		name, unit string
		get        func(scaleRow) float64
		scale      float64 // of the extrapolated total, for display
		totalUnit  string
	}{
		{"rss", "kB", func(r scaleRow) float64 { return r.rssKB }, 1.0 / 1024, "MB"},
		{"heap", "kB", func(r scaleRow) float64 { return r.heapKB }, 1.0 / 1024, "MB"},
		{"live-heap", "kB", func(r scaleRow) float64 { return r.liveKB }, 1.0 / 1024, "MB"},
		{"stack", "kB", func(r scaleRow) float64 { return r.stackKB }, 1.0 / 1024, "MB"},
		{"rss-settled", "kB", func(r scaleRow) float64 { return r.settledRSSKB }, 1.0 / 1024, "MB"},
		{"stack-settled", "kB", func(r scaleRow) float64 { return r.settledStackKB }, 1.0 / 1024, "MB"},
		{"goroutines", "", func(r scaleRow) float64 { return r.goroutines }, 1, ""},
		{"threads", "", func(r scaleRow) float64 { return r.threads }, 1, ""},
		{"fds", "", func(r scaleRow) float64 { return r.fds }, 1, ""},
		{"idle-cpu", "% core", func(r scaleRow) float64 { return r.idleCPU }, 1, "% core"},
		{"idle-wakes", "/s", func(r scaleRow) float64 { return r.idleWakes }, 1, "/s"},
		{"cpu-settled", "% core", func(r scaleRow) float64 { return r.settledIdleCPU }, 1, "% core"},
		{"wakes-settled", "/s", func(r scaleRow) float64 { return r.settledWakes }, 1, "/s"},
	}
	fmt.Printf("SCALEFIT %-11s %14s %12s %16s\n", "figure", "per login", "intercept", "at 10000 logins")
	for _, f := range figures {
		a, m := fit(rows, f.get)
		fmt.Printf("SCALEFIT %-11s %10.3f %-3s %12.1f %12.1f %s\n", f.name, m, f.unit, a*f.scale, (a+m*10000)*f.scale, f.totalUnit)
	}
}

// fit is the least-squares line y = a + m·n over the rows.
func fit(rows []scaleRow, get func(scaleRow) float64) (a, m float64) {
	var sx, sy, sxx, sxy float64
	k := float64(len(rows))
	for _, r := range rows {
		x, y := float64(r.n), get(r)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	den := k*sxx - sx*sx
	if den == 0 {
		return sy / k, 0
	}
	m = (k*sxy - sx*sy) / den
	return (sy - m*sx) / k, m
}

func slope(rows []scaleRow, get func(scaleRow) float64) float64 {
	_, m := fit(rows, get)
	return m
}

func scaleSteps(b *testing.B) []int {
	spec := os.Getenv("MXOMEMO_SCALE_N")
	if spec == "" {
		spec = "50,200,500"
	}
	var steps []int
	for _, s := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 || (len(steps) > 0 && n <= steps[len(steps)-1]) {
			b.Fatalf("MXOMEMO_SCALE_N=%q: want increasing positive counts", spec)
		}
		steps = append(steps, n)
	}
	return steps
}

func scaleLocalpart(i int) string { return fmt.Sprintf("scale%05d", i) }
func scalePassword(i int) string  { return fmt.Sprintf("scale-pw-%05d", i) }

// writeProsodyAccount writes an account file as Prosody's internal_hashed authentication stores
// it (SCRAM-SHA-1 stored and server keys), which Prosody reads on every login: registering
// thousands of accounts with prosodyctl takes a Lua start-up each.
func writeProsodyAccount(dir, localpart, password string) error {
	const iterations = 4096
	salt := "salt-" + localpart
	salted, err := pbkdf2.Key(sha1.New, password, []byte(salt), iterations, sha1.Size)
	if err != nil {
		return fmt.Errorf("failed to derive the SCRAM key: %w", err)
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha1.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	stored := sha1.Sum(mac(salted, "Client Key"))
	server := mac(salted, "Server Key")
	content := fmt.Sprintf("return {\n\t[\"iteration_count\"] = %d;\n\t[\"salt\"] = %q;\n\t[\"stored_key\"] = %q;\n\t[\"server_key\"] = %q;\n};\n",
		iterations, salt, hex.EncodeToString(stored[:]), hex.EncodeToString(server))
	return os.WriteFile(filepath.Join(dir, localpart+".dat"), []byte(content), 0o600)
}

package metrics

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	up "go.mau.fi/util/configupgrade"
	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix/bridgev2/status"
)

func newTestMetrics(t *testing.T) (*Metrics, *httptest.Server) {
	t.Helper()
	m := NewWithRegistry(Config{Enabled: true, Listen: "127.0.0.1:0"}, prometheus.NewRegistry())
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	return m, srv
}

func scrape(t *testing.T, srv *httptest.Server) Samples {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := Scrape(ctx, srv.URL+"/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	return s
}

func mustGet(t *testing.T, s Samples, name string, labels ...string) float64 {
	t.Helper()
	v, ok := s.Get(name, labels...)
	if !ok {
		t.Fatalf("series %s %v not exposed", name, labels)
	}
	return v
}

func TestDisabledIsNilAndNoop(t *testing.T) {
	m, err := New(Config{Enabled: false, Listen: "not an address"})
	if err != nil || m != nil {
		t.Fatalf("New(disabled) = %v, %v; want nil, nil", m, err)
	}
	// Every call site must be safe without a branch.
	m.SetLoginConnected("a", true)
	m.RemoveLogin("a")
	m.ObserveBridgeState("a", status.StateConnected)
	m.MessageBridged(XMPPToMatrix, OutcomeOK)
	m.SetOMEMOSessions(3)
	m.AddOMEMOSessions(1)
	m.ObserveDecrypt(time.Millisecond)
	m.ObserveEncrypt(time.Millisecond)
	m.XMPPReconnect()
	m.SetReadyCheck(func(context.Context) error { return nil })
	if err := m.Start(context.Background()); err != nil {
		t.Fatalf("nil Start: %v", err)
	}
	if err := m.Stop(context.Background()); err != nil {
		t.Fatalf("nil Stop: %v", err)
	}
	if m.Addr() != nil || m.Registry() != nil {
		t.Fatal("nil Metrics exposes an address or registry")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("nil Handler answered %d, want 404", rec.Code)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"disabled with garbage", Config{Enabled: false, Listen: "::::"}, true},
		{"enabled loopback", Config{Enabled: true, Listen: "127.0.0.1:8001"}, true},
		{"enabled all interfaces", Config{Enabled: true, Listen: ":9100"}, true},
		{"enabled empty", Config{Enabled: true}, false},
		{"enabled no port", Config{Enabled: true, Listen: "127.0.0.1"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			m, err := New(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("New() error = %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && tt.cfg.Enabled && m == nil {
				t.Fatal("New(enabled) returned nil")
			}
		})
	}
}

func TestMessageCountersMoveAndAreServed(t *testing.T) {
	m, srv := newTestMetrics(t)
	before := scrape(t, srv)
	for _, d := range directions {
		for _, o := range outcomes {
			if v := mustGet(t, before, "xmpp_bridge_messages_total", "direction", string(d), "outcome", string(o)); v != 0 {
				t.Fatalf("%s/%s starts at %v, want 0", d, o, v)
			}
		}
	}

	calls := []struct {
		d Direction
		o Outcome
		n int
	}{
		{XMPPToMatrix, OutcomeOK, 3},
		{XMPPToMatrix, OutcomeUndecryptable, 2},
		{MatrixToXMPP, OutcomeOK, 1},
		{MatrixToXMPP, OutcomeFailedSend, 4},
	}
	for _, c := range calls {
		for range c.n {
			m.MessageBridged(c.d, c.o)
		}
	}
	m.XMPPReconnect()
	m.XMPPReconnect()
	m.SetOMEMOSessions(5)
	m.AddOMEMOSessions(2)
	m.AddOMEMOSessions(-1)

	after := scrape(t, srv)
	for _, c := range calls {
		if v := mustGet(t, after, "xmpp_bridge_messages_total", "direction", string(c.d), "outcome", string(c.o)); v != float64(c.n) {
			t.Errorf("messages %s/%s = %v, want %d", c.d, c.o, v, c.n)
		}
	}
	if v := mustGet(t, after, "xmpp_bridge_messages_total", "direction", "matrix_to_xmpp", "outcome", "undecryptable"); v != 0 {
		t.Errorf("untouched series moved to %v", v)
	}
	if v := mustGet(t, after, "xmpp_bridge_xmpp_reconnects_total"); v != 2 {
		t.Errorf("reconnects = %v, want 2", v)
	}
	if v := mustGet(t, after, "xmpp_bridge_omemo_sessions"); v != 6 {
		t.Errorf("omemo sessions = %v, want 6", v)
	}
	if _, ok := after.Get("go_goroutines"); !ok {
		t.Error("Go runtime collector missing")
	}
}

func TestLoginGauges(t *testing.T) {
	type step struct {
		login string
		state status.BridgeStateEvent
	}
	tests := []struct {
		name           string
		steps          []step
		wantConnected  float64
		wantDisconnect float64
	}{
		{"connect one", []step{{"a", status.StateConnecting}, {"a", status.StateConnected}}, 1, 0},
		{"repeat is idempotent", []step{{"a", status.StateConnected}, {"a", status.StateConnected}, {"a", status.StateBackfilling}}, 1, 0},
		{"transient then back", []step{{"a", status.StateConnected}, {"a", status.StateTransientDisconnect}, {"a", status.StateConnected}}, 1, 0},
		{"two logins one bad", []step{{"a", status.StateConnected}, {"b", status.StateBadCredentials}}, 1, 1},
		{"unknown error", []step{{"a", status.StateConnected}, {"a", status.StateUnknownError}}, 0, 1},
		{"logout forgets", []step{{"a", status.StateConnected}, {"b", status.StateTransientDisconnect}, {"b", status.StateLoggedOut}}, 1, 0},
		{"bridge-wide states ignored", []step{{"a", status.StateRunning}, {"a", status.StateStarting}}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, srv := newTestMetrics(t)
			for _, s := range tt.steps {
				m.ObserveBridgeState(s.login, s.state)
			}
			got := scrape(t, srv)
			if v := mustGet(t, got, "xmpp_bridge_logins_connected"); v != tt.wantConnected {
				t.Errorf("connected = %v, want %v", v, tt.wantConnected)
			}
			if v := mustGet(t, got, "xmpp_bridge_logins_disconnected"); v != tt.wantDisconnect {
				t.Errorf("disconnected = %v, want %v", v, tt.wantDisconnect)
			}
		})
	}
}

func TestLatencyHistograms(t *testing.T) {
	m, srv := newTestMetrics(t)
	m.ObserveDecrypt(100 * time.Microsecond)
	m.ObserveDecrypt(3 * time.Millisecond)
	m.ObserveEncrypt(40 * time.Microsecond)
	got := scrape(t, srv)

	if v := mustGet(t, got, "xmpp_bridge_omemo_decrypt_seconds_count"); v != 2 {
		t.Errorf("decrypt count = %v, want 2", v)
	}
	if v := mustGet(t, got, "xmpp_bridge_omemo_decrypt_seconds_sum"); math.Abs(v-0.0031) > 1e-9 {
		t.Errorf("decrypt sum = %v, want 0.0031", v)
	}
	// 100 µs falls in the 125 µs bucket, 3 ms does not.
	if v := mustGet(t, got, "xmpp_bridge_omemo_decrypt_seconds_bucket", "le", "0.000125"); v != 1 {
		t.Errorf("decrypt bucket le=0.000125 = %v, want 1", v)
	}
	if v := mustGet(t, got, "xmpp_bridge_omemo_encrypt_seconds_bucket", "le", "5e-05"); v != 1 {
		t.Errorf("encrypt bucket le=5e-05 = %v, want 1", v)
	}
	if v := mustGet(t, got, "xmpp_bridge_omemo_encrypt_seconds_count"); v != 1 {
		t.Errorf("encrypt count = %v, want 1", v)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestHealthAndReadiness(t *testing.T) {
	m, srv := newTestMetrics(t)
	if code, _ := get(t, srv.URL+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d, want 200", code)
	}
	if code, body := get(t, srv.URL+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "not finished starting") {
		t.Fatalf("/readyz before a check = %d %q, want 503", code, body)
	}
	var dbErr error
	m.SetReadyCheck(func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			return errors.New("check got no deadline")
		}
		return dbErr
	})
	if code, body := get(t, srv.URL+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz with passing check = %d %q, want 200", code, body)
	}
	dbErr = errors.New("database unreachable")
	if code, body := get(t, srv.URL+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "database unreachable") {
		t.Fatalf("/readyz with failing check = %d %q, want 503 naming the cause", code, body)
	}
	if code, _ := get(t, srv.URL+"/nope"); code != http.StatusNotFound {
		t.Fatalf("unknown path = %d, want 404", code)
	}
}

func TestStartServesAndStops(t *testing.T) {
	m, err := New(Config{Enabled: true, Listen: "127.0.0.1:0"})
	if err != nil || m == nil {
		t.Fatalf("New: %v, %v", m, err)
	}
	ctx := context.Background()
	if err := m.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := m.Start(ctx); !errors.Is(err, errAlreadyStarted) {
		t.Fatalf("second Start = %v, want errAlreadyStarted", err)
	}
	base := "http://" + m.Addr().String()
	m.MessageBridged(MatrixToXMPP, OutcomeOK)
	s, err := Scrape(ctx, base+"/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	if v, _ := s.Get("xmpp_bridge_messages_total", "direction", "matrix_to_xmpp", "outcome", "ok"); v != 1 {
		t.Fatalf("served counter = %v, want 1", v)
	}
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}
	stopCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := m.Stop(stopCtx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("server still answers after Stop")
	}
	if m.Addr() != nil {
		t.Fatal("Addr after Stop is not nil")
	}
}

func TestStartReportsListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	m, _ := New(Config{Enabled: true, Listen: ln.Addr().String()})
	if err := m.Start(context.Background()); err == nil {
		_ = m.Stop(context.Background())
		t.Fatal("Start on a taken port succeeded")
	}
}

func TestUpgradeConfigKeepsValues(t *testing.T) {
	var base, old yaml.Node
	if err := yaml.Unmarshal([]byte(ExampleConfig), &base); err != nil {
		t.Fatalf("ExampleConfig is not YAML: %v", err)
	}
	if err := yaml.Unmarshal([]byte("metrics:\n  enabled: true\n  listen: 0.0.0.0:9100\n"), &old); err != nil {
		t.Fatal(err)
	}
	helper := up.NewHelper(base.Content[0], old.Content[0])
	UpgradeConfig(helper, "metrics")
	out, err := yaml.Marshal(&base)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Metrics Config `yaml:"metrics"`
	}
	if err := yaml.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if !cfg.Metrics.Enabled || cfg.Metrics.Listen != "0.0.0.0:9100" {
		t.Fatalf("upgraded config = %+v, want enabled on 0.0.0.0:9100", cfg.Metrics)
	}

	var defaults struct {
		Metrics Config `yaml:"metrics"`
	}
	if err := yaml.Unmarshal([]byte(ExampleConfig), &defaults); err != nil {
		t.Fatal(err)
	}
	if defaults.Metrics.Enabled || defaults.Metrics.Listen != DefaultListen {
		t.Fatalf("example defaults = %+v, want disabled on %s", defaults.Metrics, DefaultListen)
	}
}

func TestParseTextRejectsGarbage(t *testing.T) {
	for _, in := range []string{"novalue", "name notanumber"} {
		if _, err := ParseText(strings.NewReader(in)); err == nil {
			t.Errorf("ParseText(%q) succeeded", in)
		}
	}
}

// docs/metrics.md must name exactly the metric families this package registers.
func TestDocsListEveryMetric(t *testing.T) {
	doc, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatalf("read docs: %v", err)
	}
	m := NewWithRegistry(Config{}, prometheus.NewRegistry())
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var registered []string
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), Namespace+"_") {
			registered = append(registered, f.GetName())
		}
	}
	documented := map[string]bool{}
	for _, name := range regexp.MustCompile("`("+Namespace+`_[a-z_]+)`).FindAllStringSubmatch(string(doc), -1) {
		documented[name[1]] = true
	}
	sort.Strings(registered)
	for _, name := range registered {
		if !documented[name] {
			t.Errorf("metric %s is not documented in docs/metrics.md", name)
		}
		delete(documented, name)
	}
	for name := range documented {
		// Histogram series suffixes are fine to mention.
		if base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count"); base != name {
			continue
		}
		t.Errorf("docs/metrics.md names %s, which is not registered", name)
	}
}

package bridge

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix/bridgev2"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/metrics"
)

func TestConfigValidateMetrics(t *testing.T) {
	for _, tc := range []struct {
		name    string
		m       metrics.Config
		wantErr bool
	}{
		{"disabled without listen", metrics.Config{}, false},
		{"enabled", metrics.Config{Enabled: true, Listen: "127.0.0.1:0"}, false},
		{"enabled without listen", metrics.Config{Enabled: true}, true},
		{"enabled without port", metrics.Config{Enabled: true, Listen: "127.0.0.1"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{PingInterval: 60, MaxReconnectDelay: 300, DisplaynameTemplate: "{{.Name}}", CredentialKey: testCredentialKey, Metrics: tc.m}
			if err := c.Validate(); (err != nil) != tc.wantErr {
				t.Fatalf("Validate() = %v, want error %v", err, tc.wantErr)
			}
		})
	}
}

func TestExampleConfigMetricsOff(t *testing.T) {
	var c Config
	if err := yaml.Unmarshal([]byte(ExampleConfig), &c); err != nil {
		t.Fatal(err)
	}
	if c.Metrics.Enabled {
		t.Error("metrics must be off by default")
	}
	if c.Metrics.Listen != metrics.DefaultListen {
		t.Errorf("metrics.listen = %q, want %q", c.Metrics.Listen, metrics.DefaultListen)
	}
}

// A disabled connector has nil metrics, and every call site must be safe with it.
func TestConnectorMetricsDisabled(t *testing.T) {
	xc := &Connector{}
	m, err := metrics.New(xc.Config.Metrics)
	if err != nil || m != nil {
		t.Fatalf("metrics.New(disabled) = %v, %v", m, err)
	}
	c := &Client{main: xc}
	c.countQueued(&incoming{}, bridgev2.EventHandlingResult{Success: true})
	c.countOMEMOSessions(context.Background())
	xc.Stop()
}

func TestCountQueued(t *testing.T) {
	m := metrics.NewWithRegistry(metrics.Config{}, prometheus.NewRegistry())
	c := &Client{main: &Connector{Metrics: m}}
	c.countQueued(&incoming{}, bridgev2.EventHandlingResult{Queued: true})
	c.countQueued(&incoming{}, bridgev2.EventHandlingResult{Success: true})
	c.countQueued(&incoming{}, bridgev2.EventHandlingResult{Ignored: true})
	c.countQueued(&incoming{}, bridgev2.EventHandlingResult{})
	// Counted as undecryptable where decryption failed, not again here.
	c.countQueued(&incoming{OMEMO: &omemoIncoming{Failed: true}}, bridgev2.EventHandlingResult{Queued: true})
	c.failIncoming(&incoming{}, jid.MustParse("bob@example.org"), 1, errOMEMOUnavailable)

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	s, err := metrics.ParseText(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatal(err)
	}
	for outcome, want := range map[metrics.Outcome]float64{
		metrics.OutcomeOK: 2, metrics.OutcomeFailedSend: 1, metrics.OutcomeUndecryptable: 1,
	} {
		got, ok := s.Get("xmpp_bridge_messages_total", "direction", string(metrics.XMPPToMatrix), "outcome", string(outcome))
		if !ok || got != want {
			t.Errorf("messages_total{outcome=%q} = %v (present %v), want %v", outcome, got, ok, want)
		}
	}
}

// The OMEMO sessions are counted at once, then at most every
// sessionsCountEvery: a call within it leaves the gauge to one later count.
func TestCountOMEMOSessionsThrottled(t *testing.T) {
	db := openIntakeDB(t, "sqlite3-fk-wal", "file:"+filepath.Join(t.TempDir(), "bridge.db")+"?_txlock=immediate")
	m := metrics.NewWithRegistry(metrics.Config{}, prometheus.NewRegistry())
	c := &Client{main: &Connector{Metrics: m, DB: db}}
	ctx := context.Background()
	addSession := func(device int) {
		if _, err := db.Exec(ctx, `INSERT INTO omemo_session (account, version, jid, device_id, record) VALUES ('a', 2, 'b', $1, $2)`, device, []byte{1}); err != nil {
			t.Fatal(err)
		}
	}
	gauge := func() float64 {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		s, err := metrics.ParseText(strings.NewReader(rec.Body.String()))
		if err != nil {
			t.Fatal(err)
		}
		v, _ := s.Get("xmpp_bridge_omemo_sessions")
		return v
	}
	addSession(1)
	c.countOMEMOSessions(ctx)
	if got := gauge(); got != 1 {
		t.Fatalf("first count: %v sessions, want 1", got)
	}
	addSession(2)
	c.countOMEMOSessions(ctx)
	c.countOMEMOSessions(ctx)
	if got := gauge(); got != 1 {
		t.Errorf("counted again within %v: %v sessions", sessionsCountEvery, got)
	}
	if !c.main.sessionsCountDue.Load() {
		t.Error("no count scheduled for the end of the window")
	}
}

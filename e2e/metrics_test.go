package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
	"github.com/mxomemo/xmpp-bridge/metrics"
)

// TestMetrics: with network.metrics enabled, the bridge serves /healthz and /readyz, and
// /metrics shows a connected login and one message bridged each way with outcome ok.
func TestMetrics(t *testing.T) {
	s := newStack(t, "sqlite")
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	base := "http://" + addr

	// Off by default: the stack's bridge runs the example config and serves nothing there.
	if resp, err := http.Get(base + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("metrics listener answered with metrics disabled (HTTP %d)", resp.StatusCode)
	}
	// The harness has no key for the metrics block: turn it on in the written config and
	// restart the bridge before anything is logged in.
	if err := s.bridge.Stop(); err != nil {
		t.Fatal(err)
	}
	enableMetrics(t, s.cfg, addr)
	ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
	defer cancel()
	if err := s.bridge.Start(ctx); err != nil {
		t.Fatal(err)
	}

	waitHTTP200(t, base+"/healthz")
	// /readyz turns 200 once mxmain's PostStart has installed the readiness check.
	waitHTTP200(t, base+"/readyz")

	before := scrape(t, base)
	if v := sample(t, before, "xmpp_bridge_logins_connected"); v != 0 {
		t.Errorf("logins_connected before any login = %v, want 0", v)
	}

	alice, alicePW := s.account(t, "alice")
	bob, bobPW := s.account(t, "bob")
	bobC := s.peer(t, bob, bobPW, "laptop")
	u := s.matrixUser(t, "mxmetrics")
	mgmt := s.loginUser(ctx, t, u, alice, alicePW)

	// XMPP -> Matrix.
	hello := uniq("hello alice, count me")
	if err := bobC.SendChat(ctx, alice, "", "", hello); err != nil {
		t.Fatal(err)
	}
	room, err := u.FindRoomWith(ctx, s.ghost(bob), mgmt)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := u.WaitEvent(ctx, room, 0, harness.IsMessage(s.ghost(bob), hello)); err != nil {
		t.Fatal(err)
	}
	// Matrix -> XMPP.
	reply := uniq("reply from matrix, count me")
	cur := bobC.Cursor()
	if _, err := u.Client.SendText(ctx, room, reply); err != nil {
		t.Fatal(err)
	}
	if _, _, err := bobC.WaitMessage(ctx, cur, bodyIs(reply)); err != nil {
		t.Fatalf("bob did not receive the reply: %v", err)
	}

	// Both counters are bumped before the message shows up on the other side, so one scrape
	// would do; polling keeps a slow machine from making this flaky.
	okSeries := func(d metrics.Direction) (string, []string) {
		return "xmpp_bridge_messages_total", []string{"direction", string(d), "outcome", string(metrics.OutcomeOK)}
	}
	var after metrics.Samples
	deadline := time.Now().Add(stepTimeout)
	for {
		after = scrape(t, base)
		moved := true
		for _, d := range []metrics.Direction{metrics.XMPPToMatrix, metrics.MatrixToXMPP} {
			name, labels := okSeries(d)
			b, _ := before.Get(name, labels...)
			a, _ := after.Get(name, labels...)
			moved = moved && a >= b+1
		}
		connected, _ := after.Get("xmpp_bridge_logins_connected")
		if (moved && connected == 1) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, d := range []metrics.Direction{metrics.XMPPToMatrix, metrics.MatrixToXMPP} {
		name, labels := okSeries(d)
		b := sample(t, before, name, labels...)
		a := sample(t, after, name, labels...)
		if a < b+1 {
			t.Errorf("messages_total{direction=%q,outcome=\"ok\"} went from %v to %v, want at least +1", d, b, a)
		}
		for _, o := range []metrics.Outcome{metrics.OutcomeUndecryptable, metrics.OutcomeFailedSend} {
			if v := sample(t, after, name, "direction", string(d), "outcome", string(o)); v != 0 {
				t.Errorf("messages_total{direction=%q,outcome=%q} = %v, want 0", d, o, v)
			}
		}
	}
	if v := sample(t, after, "xmpp_bridge_logins_connected"); v != 1 {
		t.Errorf("logins_connected = %v, want 1", v)
	}
	if v := sample(t, after, "xmpp_bridge_logins_disconnected"); v != 0 {
		t.Errorf("logins_disconnected = %v, want 0", v)
	}
	waitHTTP200(t, base+"/readyz")
}

// enableMetrics sets network.metrics in the stack's config.yaml.
func enableMetrics(t *testing.T, cfg *harness.BridgeConfig, addr string) {
	t.Helper()
	raw, err := os.ReadFile(cfg.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	network, _ := doc["network"].(map[string]any)
	m, ok := network["metrics"].(map[string]any)
	if !ok {
		t.Fatal("the bridge's config has no network.metrics block")
	}
	m["enabled"], m["listen"] = true, addr
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.ConfigPath(), out, 0o600); err != nil {
		t.Fatal(err)
	}
}

func scrape(t *testing.T, base string) metrics.Samples {
	t.Helper()
	ctx, cancel := stepCtx()
	defer cancel()
	s, err := metrics.Scrape(ctx, base+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sample is a series that must exist (the bridge creates every series at startup).
func sample(t *testing.T, s metrics.Samples, name string, labelPairs ...string) float64 {
	t.Helper()
	v, ok := s.Get(name, labelPairs...)
	if !ok {
		t.Fatalf("no series %s%v in /metrics", name, labelPairs)
	}
	return v
}

// waitHTTP200 polls url until it answers 200 (within stepTimeout).
func waitHTTP200(t *testing.T, url string) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(stepTimeout)
	last := "no answer"
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s, want 200", url, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

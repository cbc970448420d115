package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
)

// benchProfileDir is where the benchmarks write CPU profiles of the bridge process
// (MXOMEMO_BENCH_PROFILE=dir; empty: no profiles). The profiles come from bridgev2's debug
// API (pprof behind the provisioning secret), which profileDebug turns on in a config.
func benchProfileDir() string { return os.Getenv("MXOMEMO_BENCH_PROFILE") }

// profileDebug turns on bridgev2's debug endpoints when profiles are asked for.
func profileDebug(c *harness.BridgeConfig) {
	if benchProfileDir() == "" {
		return
	}
	if c.Set == nil {
		c.Set = map[string]any{}
	}
	c.Set["provisioning.debug_endpoints"] = true
}

// cpuProfile profiles the bridge of c from now until the returned function is called, as
// consecutive one-second profiles dir/name-<n>.pprof (merge them with `go tool pprof
// dir/name-*.pprof`). Without MXOMEMO_BENCH_PROFILE it does nothing.
func cpuProfile(tb testing.TB, c *harness.BridgeConfig, name string) func() {
	dir := benchProfileDir()
	// A trace (traceDuring) is taken without CPU profiles beside it, whose sampling it would record.
	if dir == "" || os.Getenv("MXOMEMO_BENCH_TRACE") != "" {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; ctx.Err() == nil; n++ {
			req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodGet, c.AppserviceURL()+"/debug/pprof/profile?seconds=1", nil)
			if err != nil {
				tb.Error(err)
				return
			}
			req.Header.Set("Authorization", "Bearer "+c.ProvisioningSecret)
			resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
			if err != nil {
				tb.Errorf("profile %s: %v", name, err)
				return
			}
			raw, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				tb.Errorf("profile %s: %d %v %.200s", name, resp.StatusCode, err, raw)
				return
			}
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%03d.pprof", name, n)), raw, 0o644); err != nil {
				tb.Error(err)
				return
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// saveProfile writes one profile of the bridge of c (path under /debug/pprof/, e.g.
// "goroutine?debug=1" or "heap") to dir/name when MXOMEMO_BENCH_PROFILE is set.
func saveProfile(tb testing.TB, c *harness.BridgeConfig, path, name string) {
	dir := benchProfileDir()
	if dir == "" {
		return
	}
	req, err := http.NewRequest(http.MethodGet, c.AppserviceURL()+"/debug/pprof/"+path, nil)
	if err != nil {
		tb.Error(err)
		return
	}
	req.Header.Set("Authorization", "Bearer "+c.ProvisioningSecret)
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		tb.Errorf("profile %s: %v", path, err)
		return
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Errorf("profile %s: %d %v", path, resp.StatusCode, err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name), raw, 0o644); err != nil {
		tb.Error(err)
	}
}

// traceDuring records a Go execution trace of the bridge of c for the next secs seconds, to
// dir/name.trace (read with `go tool trace`, or `go tool trace -pprof=sync|syscall|net|sched`
// for where goroutines waited), when MXOMEMO_BENCH_TRACE is set as well as
// MXOMEMO_BENCH_PROFILE. The returned function waits for the trace to be written.
func traceDuring(tb testing.TB, c *harness.BridgeConfig, name string, secs int) func() {
	dir := benchProfileDir()
	if dir == "" || os.Getenv("MXOMEMO_BENCH_TRACE") == "" {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		saveProfileErr(c, fmt.Sprintf("trace?seconds=%d", secs), name+".trace", tb.Errorf)
	}()
	// The trace starts when the bridge has the request: a moment before the phase does.
	time.Sleep(100 * time.Millisecond)
	return func() { <-done }
}

// saveProfileErr is saveProfile reporting failures through errorf (usable off the test's
// goroutine).
func saveProfileErr(c *harness.BridgeConfig, path, name string, errorf func(string, ...any)) {
	req, err := http.NewRequest(http.MethodGet, c.AppserviceURL()+"/debug/pprof/"+path, nil)
	if err != nil {
		errorf("profile %s: %v", path, err)
		return
	}
	req.Header.Set("Authorization", "Bearer "+c.ProvisioningSecret)
	resp, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
	if err != nil {
		errorf("profile %s: %v", path, err)
		return
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		errorf("profile %s: %d %v", path, resp.StatusCode, err)
		return
	}
	if err := os.WriteFile(filepath.Join(benchProfileDir(), name), raw, 0o644); err != nil {
		errorf("profile %s: %v", path, err)
	}
}

// Package harness runs the bridge binary against real servers for the end-to-end tests and the
// demo: it writes the bridge config, generates the appservice registration, starts and stops the
// bridge process, and drives a Matrix user and XMPP peers.
package harness

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"
)

// BridgeConfig is what the harness changes in the example config the bridge writes with -e.
type BridgeConfig struct {
	// Dir holds config.yaml, registration.yaml, the SQLite database and the bridge log.
	Dir string
	// HomeserverURL is the homeserver's client-server API base URL; Domain its server name.
	HomeserverURL string
	Domain        string
	// AppservicePort is the bridge's appservice HTTP port on 127.0.0.1.
	AppservicePort int
	// PostgresURI selects PostgreSQL; empty means SQLite in Dir.
	PostgresURI string
	// ProvisioningSecret is the provisioning API's shared secret (generated when empty).
	ProvisioningSecret string
	// Encryption allows end-to-bridge encryption (bot device login and /sync, which Dendrite
	// supports); EncryptionDefault also makes new portals encrypted.
	Encryption        bool
	EncryptionDefault bool
	// DoublePuppet turns on automatic double puppeting for local users with the appservice's own
	// token ("as_token:" secret); the registration gets a non-exclusive namespace for all local
	// users so that the homeserver lets the appservice act as them.
	DoublePuppet bool
	// LogLevel is logging.min_level ("debug" when empty); benchmarks use "info", as production.
	LogLevel string
	// Network sets keys of the network section (dotted below it: "omemo.trust_policy").
	Network map[string]any
	// Set sets any key of the config (dotted from the top: "appservice.bot.username"), after
	// the harness's own edits; several instances on one homeserver differ here (appservice id,
	// bot, ghost template, ports).
	Set map[string]any
}

// ConfigPath is Dir/config.yaml.
func (c *BridgeConfig) ConfigPath() string { return filepath.Join(c.Dir, "config.yaml") }

// RegistrationPath is Dir/registration.yaml.
func (c *BridgeConfig) RegistrationPath() string { return filepath.Join(c.Dir, "registration.yaml") }

// AppserviceURL is the address the homeserver pushes transactions to.
func (c *BridgeConfig) AppserviceURL() string {
	return "http://127.0.0.1:" + strconv.Itoa(c.AppservicePort)
}

// DatabaseURI is the bridge database URI written to the config.
func (c *BridgeConfig) DatabaseURI() string {
	if c.PostgresURI != "" {
		return c.PostgresURI
	}
	return "file:" + filepath.Join(c.Dir, "bridge.db") + "?_txlock=immediate"
}

// BuildBridge builds ./cmd/bridge of the module at root into out (a file path).
func BuildBridge(ctx context.Context, root, out string) error {
	cmd := exec.CommandContext(ctx, goBin(), "build", "-tags", "goolm", "-o", out, "./cmd/bridge")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("failed to build the bridge: %w\n%s", err, b)
	}
	return nil
}

func goBin() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// RepoRoot finds the module root (the directory of go.mod) from the working directory upwards.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("harness: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// WriteConfig writes Dir/config.yaml from the bridge's own example config (bin -e), edited for
// the test servers, and generates Dir/registration.yaml with bin -g.
// dbCheckEnvPrefix is the bridge's env_config_prefix under MXOMEMO_E2E_DB_CONNS.
const dbCheckEnvPrefix = "MXOMEMO_E2E_DBCHECK_"

func WriteConfig(ctx context.Context, bin string, c *BridgeConfig) error {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return err
	}
	if c.ProvisioningSecret == "" {
		c.ProvisioningSecret = randomHex(24)
	}
	example := filepath.Join(c.Dir, "example-config.yaml")
	if out, err := exec.CommandContext(ctx, bin, "-e", "-c", example).CombinedOutput(); err != nil {
		return fmt.Errorf("bridge -e failed: %w\n%s", err, out)
	}
	raw, err := os.ReadFile(example)
	if err != nil {
		return err
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		return fmt.Errorf("failed to parse the example config: %w", err)
	}
	dbType := "sqlite3-fk-wal"
	if c.PostgresURI != "" {
		dbType = "postgres"
	}
	edits := map[string]any{
		"homeserver.address":         c.HomeserverURL,
		"homeserver.domain":          c.Domain,
		"appservice.address":         c.AppserviceURL(),
		"appservice.hostname":        "127.0.0.1",
		"appservice.port":            c.AppservicePort,
		"database.type":              dbType,
		"database.uri":               c.DatabaseURI(),
		"bridge.permissions":         map[string]any{"*": "relay", c.Domain: "user"},
		"double_puppet.servers":      map[string]any{},
		"double_puppet.secrets":      map[string]any{},
		"provisioning.shared_secret": c.ProvisioningSecret,
		"encryption.allow":           c.Encryption,
		"encryption.default":         c.EncryptionDefault,
		"encryption.appservice":      false,
		"encryption.msc4190":         false,
		"encryption.pickle_key":      randomHex(16),
		"network.insecure_tls_hosts": []any{},
		// The test servers' upload services are on loopback with
		// self-signed certificates: only the admin may allow that for media.
		"network.media_private_hosts":      []any{"localhost"},
		"network.media_insecure_tls_hosts": []any{"localhost"},
		"logging.min_level":                cmp.Or(c.LogLevel, "debug"),
		"logging.writers":                  []any{map[string]any{"type": "stdout", "format": "pretty"}},
		"bridge.bridge_status_notices":     "all",
		"bridge.personal_filtering_spaces": false,
	}
	for path, v := range c.Network {
		edits["network."+path] = v
	}
	// MXOMEMO_E2E_DB_CONNS=n runs every bridge with a pool of n connections and dbutil's
	// deadlock detection (a query without the goroutine's open transaction panics instead of
	// waiting for a connection that transaction holds): to check a one-connection pool.
	if n := os.Getenv("MXOMEMO_E2E_DB_CONNS"); n != "" {
		conns, err := strconv.Atoi(n)
		if err != nil {
			return fmt.Errorf("failed to parse MXOMEMO_E2E_DB_CONNS: %w", err)
		}
		edits["database.max_open_conns"], edits["database.max_idle_conns"] = conns, conns
		// deadlock_detection is not in the example config, and mxmain's config upgrade drops
		// keys it does not know: it comes from the environment instead (Start).
		edits["env_config_prefix"] = dbCheckEnvPrefix
	}
	for path, v := range c.Set {
		edits[path] = v
	}
	for path, v := range edits {
		if err := setPath(cfg, path, v); err != nil {
			return err
		}
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	if err := os.WriteFile(c.ConfigPath(), out, 0o600); err != nil {
		return err
	}
	if b, err := exec.CommandContext(ctx, bin, "-g", "-c", c.ConfigPath(), "-r", c.RegistrationPath()).CombinedOutput(); err != nil {
		return fmt.Errorf("bridge -g failed: %w\n%s", err, b)
	}
	if _, err := os.Stat(c.RegistrationPath()); err != nil {
		return fmt.Errorf("bridge -g wrote no registration: %w", err)
	}
	if c.DoublePuppet {
		return c.enableDoublePuppet()
	}
	return nil
}

func (c *BridgeConfig) enableDoublePuppet() error {
	var reg map[string]any
	if err := editYAML(c.RegistrationPath(), &reg, func() error {
		ns, ok := reg["namespaces"].(map[string]any)
		if !ok {
			return errors.New("harness: registration has no namespaces")
		}
		users, _ := ns["users"].([]any)
		ns["users"] = append(users, map[string]any{
			"regex":     "^@.*:" + regexp.QuoteMeta(c.Domain) + "$",
			"exclusive": false,
		})
		return nil
	}); err != nil {
		return err
	}
	var cfg map[string]any
	return editYAML(c.ConfigPath(), &cfg, func() error {
		as, _ := cfg["appservice"].(map[string]any)
		token, _ := as["as_token"].(string)
		if token == "" {
			return errors.New("harness: config has no appservice.as_token after -g")
		}
		return setPath(cfg, "double_puppet.secrets", map[string]any{c.Domain: "as_token:" + token})
	})
}

// editYAML loads a YAML file into v, calls edit and writes v back.
func editYAML(path string, v any, edit func() error) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("failed to parse %s: %w", path, err)
	}
	if err := edit(); err != nil {
		return err
	}
	out, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o600)
}

// setPath sets a dotted key of a YAML mapping; every parent must exist, so that a renamed key in
// the example config fails loudly instead of being added silently.
func setPath(m map[string]any, path string, v any) error {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			return fmt.Errorf("harness: example config has no section %q (for %s)", p, path)
		}
		m = next
	}
	if _, ok := m[parts[len(parts)-1]]; !ok {
		return fmt.Errorf("harness: example config has no key %s", path)
	}
	m[parts[len(parts)-1]] = v
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Bridge is a running bridge process.
type Bridge struct {
	Bin    string
	Config *BridgeConfig

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	log     *os.File
	// Extra receives a copy of the log (e.g. the demo's terminal); may be nil.
	Extra io.Writer
}

// PID is the running bridge's process id (0 when stopped), for reading its CPU time.
func (b *Bridge) PID() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil || b.cmd.Process == nil {
		return 0
	}
	return b.cmd.Process.Pid
}

// LogPath is Dir/bridge.log; every start appends to it.
func (b *Bridge) LogPath() string { return filepath.Join(b.Config.Dir, "bridge.log") }

// Start starts the bridge (with --ignore-unsupported-server: Dendrite reports spec v1.2 while
// bridgev2 asks for v1.4) and waits until its appservice API reports ready.
func (b *Bridge) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		return errors.New("harness: bridge already running")
	}
	f, err := os.OpenFile(b.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "===== harness: starting bridge at %s =====\n", time.Now().UTC().Format(time.RFC3339Nano))
	var w io.Writer = f
	if b.Extra != nil {
		w = io.MultiWriter(f, b.Extra)
	}
	cmd := exec.Command(b.Bin, "-c", b.Config.ConfigPath(), "-r", b.Config.RegistrationPath(), "--ignore-unsupported-server")
	cmd.Dir = b.Config.Dir
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if os.Getenv("MXOMEMO_E2E_DB_CONNS") != "" {
		cmd.Env = append(os.Environ(), dbCheckEnvPrefix+"DATABASE__DEADLOCK_DETECTION=true")
	}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("failed to start the bridge: %w", err)
	}
	b.cmd, b.log, b.exited = cmd, f, make(chan struct{})
	go func(exited chan struct{}) {
		err := cmd.Wait()
		b.mu.Lock()
		b.waitErr = err
		b.mu.Unlock()
		close(exited)
	}(b.exited)
	exited := b.exited
	b.mu.Unlock()
	err = b.waitReady(ctx, exited)
	b.mu.Lock()
	return err
}

func (b *Bridge) waitReady(ctx context.Context, exited chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	url := b.Config.AppserviceURL() + "/_matrix/mau/ready"
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			b.mu.Lock()
			werr := b.waitErr
			b.mu.Unlock()
			return fmt.Errorf("bridge exited during startup (%v); log:\n%s", werr, b.Tail(8000))
		case <-ctx.Done():
			return fmt.Errorf("bridge not ready at %s: %w; log:\n%s", url, ctx.Err(), b.Tail(8000))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Running reports whether the process is alive.
func (b *Bridge) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return false
	}
	select {
	case <-b.exited:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM and waits (SIGKILL after 15 s). It returns the exit error, if any, of a
// process that had already exited on its own.
func (b *Bridge) Stop() error {
	b.mu.Lock()
	cmd, exited, f := b.cmd, b.exited, b.log
	b.mu.Unlock()
	if cmd == nil {
		return nil
	}
	var early error
	select {
	case <-exited:
		b.mu.Lock()
		if b.waitErr != nil {
			early = fmt.Errorf("bridge had exited: %w", b.waitErr)
		} else {
			early = errors.New("bridge had exited")
		}
		b.mu.Unlock()
	default:
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}
	b.mu.Lock()
	b.cmd = nil
	b.mu.Unlock()
	if f != nil {
		_ = f.Close()
	}
	return early
}

// Kill sends SIGKILL to the bridge's process group and waits for it to exit: a crash at whatever
// point the bridge is, with nothing flushed or closed.
func (b *Bridge) Kill() {
	b.mu.Lock()
	cmd, exited, f := b.cmd, b.exited, b.log
	b.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
	b.mu.Lock()
	b.cmd = nil
	b.mu.Unlock()
	if f != nil {
		fmt.Fprintf(f, "===== harness: killed bridge at %s =====\n", time.Now().UTC().Format(time.RFC3339Nano))
		_ = f.Close()
	}
}

// Log returns the whole bridge log.
func (b *Bridge) Log() string {
	raw, _ := os.ReadFile(b.LogPath())
	return strings.ToValidUTF8(string(raw), "?")
}

// Tail returns the last n bytes of the log.
func (b *Bridge) Tail(n int) string {
	s := b.Log()
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

// CountLog counts log lines containing every one of the substrings.
func (b *Bridge) CountLog(substrings ...string) int {
	n := 0
	for _, line := range bytes.Split([]byte(b.Log()), []byte("\n")) {
		ok := true
		for _, s := range substrings {
			if !bytes.Contains(line, []byte(s)) {
				ok = false
				break
			}
		}
		if ok {
			n++
		}
	}
	return n
}

package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TB is the part of testing.TB the package needs. *testing.T and *testing.B satisfy it; the
// testenv command and the shared servers of [Main] bring their own.
type TB interface {
	Helper()
	TempDir() string
	Cleanup(func())
	Failed() bool
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
}

var _ TB = testing.TB(nil)

// logTail is how much of a server log goes into failure messages.
const logTail = 8 << 10

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return port
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("failed to pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last n bytes of a file, for failure messages.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	off := int64(0)
	if st.Size() > n {
		off = st.Size() - n
	}
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return fmt.Sprintf("(failed to read log: %v)", err)
	}
	s := string(buf)
	if off > 0 {
		s = "…" + s[strings.IndexByte(s, '\n')+1:]
	}
	return s
}

// proc is a server process in its own process group, so that stopping it also stops its children
// and a Ctrl-C in the terminal of the testenv command does not reach it.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

func startProc(name, logPath, dir string, env []string, argv ...string) (*proc, error) {
	return startProcAs(name, logPath, dir, env, nil, argv...)
}

// startProcAs is startProc running as another user when cred is not nil.
func startProcAs(name, logPath, dir string, env []string, cred *syscall.Credential, argv ...string) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("failed to open %s log: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("failed to start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended, with its wait error.
func (p *proc) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// stop sends SIGTERM to the process group and SIGKILL after the grace period.
// It reports whether the process had to be SIGKILLed.
func (p *proc) stop(grace time.Duration) (killed bool) {
	if done, _ := p.exited(); done {
		return false
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return false
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return true
	}
}

// waitReady polls check until it succeeds, the process exits, or the timeout passes.
func (p *proc) waitReady(timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if done, werr := p.exited(); done {
			return fmt.Errorf("%s exited during startup (%v)", p.name, werr)
		}
		if err = check(); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %w", p.name, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startRetrying runs start up to three times while it fails on a port that
// another process took between picking and binding (errPortInUse); any other
// failure, or the third, is returned with the tail of the server's log.
func startRetrying(name, logPath string, start func() error) error {
	for attempt := 0; ; attempt++ {
		err := start()
		if err == nil {
			return nil
		}
		if !errors.Is(err, errPortInUse) || attempt == 2 {
			return fmt.Errorf("%v\n--- %s log (%s) ---\n%s", err, name, logPath, tail(logPath, logTail))
		}
	}
}

// freePorts picks n TCP ports on 127.0.0.1 that were free a moment ago.
func freePorts(n int) ([]int, error) {
	ports := make([]int, n)
	for i := range ports {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = port
	}
	return ports, nil
}

// errPortInUse marks startup failures worth a retry with other ports: free-picked ports can be
// taken by another process between picking and binding.
var errPortInUse = errors.New("testenv: port in use")

func portConflict(logPath string) bool {
	b, _ := os.ReadFile(logPath)
	return bytes.Contains(b, []byte("address already in use")) || bytes.Contains(b, []byte("Address already in use"))
}

// repoRoot finds the module root (for scripts/), from the working directory upwards.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/mxomemo/xmpp-bridge")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testenv: repository root (go.mod of github.com/mxomemo/xmpp-bridge) not found")
		}
		dir = parent
	}
}

// lookPath finds a server binary, with a hint to run install-deps when it is missing.
func lookPath(name string, candidates ...string) (string, error) {
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found: run scripts/install-deps.sh (as root)", name)
}

// shared holds servers started once per test binary by the Shared* functions.
var shared struct {
	sync.Mutex
	active   bool
	tb       *mainTB
	prosody  *Prosody
	dendrite *Dendrite
	postgres *Postgres
	errs     map[string]error
}

// Main runs the tests of a package and then stops the servers the Shared* functions started.
// Call it from TestMain: func TestMain(m *testing.M) { testenv.Main(m) }.
func Main(m *testing.M) {
	shared.Lock()
	shared.active = true
	shared.tb = newMainTB("mxomemo-testenv-")
	shared.Unlock()
	code := m.Run()
	shared.Lock()
	shared.tb.runCleanups()
	shared.Unlock()
	os.Exit(code)
}

// sharedStart runs start once per test binary with the package-wide TB and memoises failures.
func sharedStart(t TB, name string, start func(TB)) {
	t.Helper()
	if !shared.active {
		t.Fatalf("testenv: Shared%s needs func TestMain(m *testing.M) { testenv.Main(m) } in the package", name)
	}
	if shared.errs == nil {
		shared.errs = map[string]error{}
	}
	if err, ok := shared.errs[name]; ok {
		if err != nil {
			t.Fatalf("testenv: shared %s failed to start earlier: %v", name, err)
		}
		return
	}
	err := shared.tb.try(start)
	shared.errs[name] = err
	if err != nil {
		t.Fatalf("testenv: shared %s: %v", name, err)
	}
}

// SharedProsody returns a Prosody started once for the test binary (see [Main]). Tests sharing it
// should use distinct account names.
func SharedProsody(t TB) *Prosody {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	sharedStart(t, "Prosody", func(tb TB) { shared.prosody = StartProsody(tb, ProsodyOptions{}) })
	logOnFailure(t, "prosody", shared.prosody.logPath)
	return shared.prosody
}

// SharedDendrite returns a Dendrite without appservice registration started once for the test
// binary (see [Main]). Tests that need the bridge's registration start their own.
func SharedDendrite(t TB) *Dendrite {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	sharedStart(t, "Dendrite", func(tb TB) { shared.dendrite = StartDendrite(tb, DendriteOptions{}) })
	logOnFailure(t, "dendrite", shared.dendrite.logPath)
	return shared.dendrite
}

// SharedPostgres returns a PostgreSQL cluster started once for the test binary (see [Main]). Give
// each test its own database with [Postgres.CreateDatabase].
func SharedPostgres(t TB) *Postgres {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	sharedStart(t, "Postgres", func(tb TB) { shared.postgres = StartPostgres(tb) })
	logOnFailure(t, "postgres", shared.postgres.logPath)
	return shared.postgres
}

// logOnFailure writes the tail of a shared server's log to t's log when t fails.
func logOnFailure(t TB, name, path string) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testenv: --- %s log (%s) ---\n%s", name, path, tail(path, logTail))
		}
	})
}

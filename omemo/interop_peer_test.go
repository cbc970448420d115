package omemo_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The interop tests drive Syndace's python-omemo (with its oldmemo and
// twomemo backends, from Debian) through testdata/pypeer/peer.py, one JSON
// object per line each way. They never skip: a machine without the packages
// fails with the command that installs them.

const (
	pythonPath    = "/usr/bin/python3"
	pyPeerScript  = "testdata/pypeer/peer.py"
	pyInstallHint = "scripts/install-omemo-peers.sh"
	pyCallTimeout = 60 * time.Second
)

var (
	pyCheckOnce sync.Once
	pyCheckErr  error
)

// requirePython fails the test unless Debian's python-omemo stack imports.
func requirePython(t testing.TB) {
	t.Helper()
	pyCheckOnce.Do(func() {
		if _, err := os.Stat(pythonPath); err != nil {
			pyCheckErr = fmt.Errorf("%s not found: %w", pythonPath, err)
			return
		}
		out, err := exec.Command(pythonPath, "-c", "import omemo, oldmemo, twomemo, oldmemo.etree, twomemo.etree").CombinedOutput()
		if err != nil {
			pyCheckErr = fmt.Errorf("python-omemo stack not importable: %v: %s", err, bytes.TrimSpace(out))
		}
	})
	if pyCheckErr != nil {
		t.Fatalf("OMEMO interop peers missing (%v); install them with `sudo %s` from the repository root (`make deps` installs them too)", pyCheckErr, pyInstallHint)
	}
}

// pyError is an {"error": ...} response of the peer.
type pyError struct {
	Cmd  string
	Type string
	Msg  string
}

func (e *pyError) Error() string { return "pypeer " + e.Cmd + ": " + e.Msg }

// pyPeer is one running peer process (one OMEMO device of one account).
type pyPeer struct {
	t      testing.TB
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan []byte
	stderr *lockedBuffer
	next   int
	done   chan struct{}
	waitMu sync.Mutex
	waited bool
	err    error
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startPyPeer starts a peer process and stops it when the test ends.
func startPyPeer(t testing.TB, name string) *pyPeer {
	t.Helper()
	requirePython(t)
	script, err := filepath.Abs(pyPeerScript)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(pythonPath, script)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	p := &pyPeer{t: t, name: name, cmd: cmd, stderr: &lockedBuffer{}, lines: make(chan []byte, 16), done: make(chan struct{})}
	cmd.Stderr = p.stderr
	p.stdin, err = cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("failed to start %s %s: %v", pythonPath, script, err)
	}
	go func() {
		defer close(p.lines)
		r := bufio.NewReaderSize(stdout, 1<<16)
		for {
			line, err := r.ReadBytes('\n')
			if len(line) > 0 {
				p.lines <- line
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.stop)
	if _, err := p.call("ping", nil); err != nil {
		t.Fatalf("pypeer %s does not answer: %v", name, err)
	}
	return p
}

// stop asks the peer to quit, then kills it if it does not exit in time.
func (p *pyPeer) stop() {
	p.waitMu.Lock()
	defer p.waitMu.Unlock()
	if p.waited {
		return
	}
	p.waited = true
	select {
	case <-p.done:
	default:
		p.next++
		_, _ = fmt.Fprintf(p.stdin, "{\"cmd\":\"quit\",\"id\":%d}\n", p.next)
		_ = p.stdin.Close()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
			p.t.Errorf("pypeer %s did not exit after quit; killed", p.name)
			return
		}
	}
	if p.err != nil {
		p.t.Errorf("pypeer %s exited with %v; stderr:\n%s", p.name, p.err, p.stderr.String())
	}
}

// call sends one request and decodes the response into a map. A peer-side
// failure comes back as *pyError; a dead or hung peer fails the test.
func (p *pyPeer) call(cmd string, args map[string]any) (map[string]any, error) {
	p.t.Helper()
	raw, err := p.callRaw(cmd, args)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		p.t.Fatalf("pypeer %s %s: bad response %q: %v", p.name, cmd, raw, err)
	}
	return m, nil
}

func (p *pyPeer) callRaw(cmd string, args map[string]any) (json.RawMessage, error) {
	p.t.Helper()
	p.next++
	id := p.next
	req := map[string]any{}
	for k, v := range args {
		req[k] = v
	}
	req["cmd"] = cmd
	req["id"] = id
	line, err := json.Marshal(req)
	if err != nil {
		p.t.Fatalf("pypeer %s %s: %v", p.name, cmd, err)
	}
	if _, err := p.stdin.Write(append(line, '\n')); err != nil {
		p.t.Fatalf("pypeer %s %s: write: %v; stderr:\n%s", p.name, cmd, err, p.stderr.String())
	}
	var resp []byte
	select {
	case l, ok := <-p.lines:
		if !ok {
			p.t.Fatalf("pypeer %s %s: peer exited; stderr:\n%s", p.name, cmd, p.stderr.String())
		}
		resp = l
	case <-time.After(pyCallTimeout):
		p.t.Fatalf("pypeer %s %s: no answer in %s; stderr:\n%s", p.name, cmd, pyCallTimeout, p.stderr.String())
	}
	var head struct {
		ID    int    `json:"id"`
		OK    bool   `json:"ok"`
		Error string `json:"error"`
		Type  string `json:"type"`
	}
	if err := json.Unmarshal(resp, &head); err != nil {
		p.t.Fatalf("pypeer %s %s: bad response %q: %v", p.name, cmd, resp, err)
	}
	if head.ID != id {
		p.t.Fatalf("pypeer %s %s: response id %d, want %d", p.name, cmd, head.ID, id)
	}
	if head.Error != "" {
		return nil, &pyError{Cmd: cmd, Type: head.Type, Msg: head.Error}
	}
	if !head.OK {
		p.t.Fatalf("pypeer %s %s: response neither ok nor error: %s", p.name, cmd, resp)
	}
	return resp, nil
}

// must is call that fails the test on a peer-side error.
func (p *pyPeer) must(cmd string, args map[string]any) map[string]any {
	p.t.Helper()
	m, err := p.call(cmd, args)
	if err != nil {
		p.t.Fatalf("pypeer %s: %v", p.name, err)
	}
	return m
}

// mustInto is must decoding into out.
func (p *pyPeer) mustInto(cmd string, args map[string]any, out any) {
	p.t.Helper()
	raw, err := p.callRaw(cmd, args)
	if err != nil {
		p.t.Fatalf("pypeer %s: %v", p.name, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		p.t.Fatalf("pypeer %s %s: decode %s: %v", p.name, cmd, raw, err)
	}
}

// fails expects a peer-side error and returns it.
func (p *pyPeer) fails(cmd string, args map[string]any) *pyError {
	p.t.Helper()
	_, err := p.call(cmd, args)
	var pe *pyError
	if !errors.As(err, &pe) {
		p.t.Fatalf("pypeer %s %s: succeeded, want an error", p.name, cmd)
	}
	return pe
}

func TestInteropPeerProtocol(t *testing.T) {
	p := startPyPeer(t, "proto")
	if e := p.fails("nonsense", nil); !strings.Contains(e.Msg, "unknown command") {
		t.Errorf("unknown command: got %q", e.Msg)
	}
	if e := p.fails("bundle", map[string]any{"version": "2"}); !strings.Contains(e.Msg, "create first") {
		t.Errorf("bundle before create: got %q", e.Msg)
	}
	var created struct {
		DeviceID    uint32 `json:"device_id"`
		IdentityKey []byte `json:"identity_key"`
		Fingerprint string `json:"fingerprint"`
	}
	p.mustInto("create", map[string]any{"jid": "proto@example.org", "device_id": 31337}, &created)
	if created.DeviceID != 31337 || len(created.IdentityKey) != 32 || len(created.Fingerprint) != 64 {
		t.Errorf("create: %+v", created)
	}
	for _, v := range []string{"0.3", "2"} {
		b := p.must("bundle", map[string]any{"version": v})
		if !strings.Contains(b["bundle"].(string), "<bundle xmlns=") || !strings.Contains(b["device_list"].(string), `id="31337"`) {
			t.Errorf("bundle %s: %v", v, b)
		}
	}
}

// TestInteropPyPeerSelfTest runs the peer's own two-process self-test (both
// versions), so a broken peer is told apart from a broken engine.
func TestInteropPyPeerSelfTest(t *testing.T) {
	requirePython(t)
	cmd := exec.Command(pythonPath, "testdata/pypeer/selftest.py")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("selftest failed: %v\n%s", err, out)
	}
	for _, v := range []string{"0.3", "2"} {
		if !strings.Contains(string(out), "selftest "+v+": ok") {
			t.Errorf("selftest %s did not report ok:\n%s", v, out)
		}
	}
}

package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
)

// mainTB is a TB outside of a test: for servers shared by a test binary and for the testenv
// command. Fatalf unwinds the goroutine (like testing's FailNow) and try turns that into an error.
type mainTB struct {
	mu       sync.Mutex
	base     string
	prefix   string
	n        int
	cleanups []func()
	failed   bool
	// Keep makes runCleanups leave the temp dirs in place (the testenv command).
	Keep bool
	// Log receives Logf output; nil discards it.
	Log func(string)
}

type fatal struct{ msg string }

func newMainTB(prefix string) *mainTB { return &mainTB{prefix: prefix} }

func (m *mainTB) Helper() {}

func (m *mainTB) TempDir() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.base == "" {
		dir, err := os.MkdirTemp("", m.prefix)
		if err != nil {
			m.fatal(fmt.Sprintf("testenv: %v", err))
		}
		m.base = dir
	}
	m.n++
	dir := filepath.Join(m.base, strconv.Itoa(m.n))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		m.fatal(fmt.Sprintf("testenv: %v", err))
	}
	return dir
}

func (m *mainTB) Cleanup(f func()) {
	m.mu.Lock()
	m.cleanups = append(m.cleanups, f)
	m.mu.Unlock()
}

func (m *mainTB) Failed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.failed
}

func (m *mainTB) Fatalf(format string, args ...any) {
	m.mu.Lock()
	m.failed = true
	m.mu.Unlock()
	m.fatal(fmt.Sprintf(format, args...))
}

func (m *mainTB) fatal(msg string) {
	panic(fatal{msg})
}

func (m *mainTB) Logf(format string, args ...any) {
	if m.Log != nil {
		m.Log(fmt.Sprintf(format, args...))
	}
}

// try runs f and returns the message of a Fatalf inside it as an error.
func (m *mainTB) try(f func(TB)) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if fe, ok := r.(fatal); ok {
				err = fmt.Errorf("%s", fe.msg)
				return
			}
			panic(r)
		}
	}()
	f(m)
	return nil
}

// runCleanups runs the registered cleanups in reverse order, then removes the temp dirs.
func (m *mainTB) runCleanups() {
	m.mu.Lock()
	cs := m.cleanups
	m.cleanups = nil
	m.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		func() {
			defer func() {
				if r := recover(); r != nil {
					buf := make([]byte, 4096)
					fmt.Fprintf(os.Stderr, "testenv: cleanup panicked: %v\n%s\n", r, buf[:runtime.Stack(buf, false)])
				}
			}()
			cs[i]()
		}()
	}
	if !m.Keep && m.base != "" {
		_ = os.RemoveAll(m.base)
	}
}

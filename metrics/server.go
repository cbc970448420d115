package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// ReadyCheck reports whether the bridge can do its work; nil means ready.
type ReadyCheck func(ctx context.Context) error

// ErrNotReady is what /readyz reports until the bridge installs a ReadyCheck: a bridge that
// has not finished starting is not ready.
var ErrNotReady = errors.New("metrics: bridge has not finished starting")

var errAlreadyStarted = errors.New("metrics: server already started")

const readyTimeout = 5 * time.Second

type server struct {
	mu    sync.Mutex
	ready ReadyCheck
	http  *http.Server
	ln    net.Listener
}

// SetReadyCheck installs the readiness check behind /readyz (e.g. "appservice ready and the
// database answers"). Until it is called /readyz answers 503.
func (m *Metrics) SetReadyCheck(check ReadyCheck) {
	if m == nil {
		return
	}
	m.srv.mu.Lock()
	m.srv.ready = check
	m.srv.mu.Unlock()
}

// Handler serves /metrics, /healthz (liveness: the process answers) and /readyz (readiness).
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeStatus(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", m.serveReady)
	return mux
}

func (m *Metrics) serveReady(w http.ResponseWriter, r *http.Request) {
	m.srv.mu.Lock()
	check := m.srv.ready
	m.srv.mu.Unlock()
	err := ErrNotReady
	if check != nil {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		err = check(ctx)
	}
	if err != nil {
		writeStatus(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
		return
	}
	writeStatus(w, http.StatusOK, "ready")
}

func writeStatus(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = fmt.Fprintln(w, msg)
}

// Start listens on the configured address and serves in the background. A listen error is
// returned here, so a port clash stops the bridge at startup instead of hiding in a log.
func (m *Metrics) Start(ctx context.Context) error {
	if m == nil {
		return nil
	}
	m.srv.mu.Lock()
	defer m.srv.mu.Unlock()
	if m.srv.http != nil {
		return errAlreadyStarted
	}
	ln, err := net.Listen("tcp", m.cfg.Listen)
	if err != nil {
		return fmt.Errorf("failed to listen for metrics on %s: %w", m.cfg.Listen, err)
	}
	log := zerolog.Ctx(ctx).With().Str("component", "metrics").Logger()
	m.srv.ln = ln
	m.srv.http = &http.Server{
		Handler:           m.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return log.WithContext(context.WithoutCancel(ctx)) },
	}
	srv := m.srv.http
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Err(err).Msg("Metrics server stopped")
		}
	}()
	log.Info().Stringer("address", ln.Addr()).Msg("Serving metrics, /healthz and /readyz")
	return nil
}

// Addr is the address the server listens on (useful with port 0); nil before Start.
func (m *Metrics) Addr() net.Addr {
	if m == nil {
		return nil
	}
	m.srv.mu.Lock()
	defer m.srv.mu.Unlock()
	if m.srv.ln == nil {
		return nil
	}
	return m.srv.ln.Addr()
}

// Stop shuts the server down, waiting for requests in flight until ctx ends.
func (m *Metrics) Stop(ctx context.Context) error {
	if m == nil {
		return nil
	}
	m.srv.mu.Lock()
	srv := m.srv.http
	m.srv.http, m.srv.ln = nil, nil
	m.srv.mu.Unlock()
	if srv == nil {
		return nil
	}
	if err := srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("failed to stop metrics server: %w", err)
	}
	return nil
}

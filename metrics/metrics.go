package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"maunium.net/go/mautrix/bridgev2/status"
)

// Namespace prefixes every metric name of the bridge.
const Namespace = "xmpp_bridge"

// Direction is the way a message travels through the bridge.
type Direction string

const (
	XMPPToMatrix Direction = "xmpp_to_matrix"
	MatrixToXMPP Direction = "matrix_to_xmpp"
)

// Outcome is what became of one message the bridge handled.
type Outcome string

const (
	// OutcomeOK: delivered to the other side.
	OutcomeOK Outcome = "ok"
	// OutcomeUndecryptable: an OMEMO (or Megolm) message the bridge could not decrypt.
	OutcomeUndecryptable Outcome = "undecryptable"
	// OutcomeFailedSend: decrypted or plain, but sending to the other side failed.
	OutcomeFailedSend Outcome = "failed_send"
)

var (
	directions = []Direction{XMPPToMatrix, MatrixToXMPP}
	outcomes   = []Outcome{OutcomeOK, OutcomeUndecryptable, OutcomeFailedSend}
)

// cryptoBuckets span one ratchet step (tens of µs) to a slow store round trip (about a second).
var cryptoBuckets = prometheus.ExponentialBuckets(0.00005, 2.5, 12)

// Metrics holds the bridge's collectors and, once started, its HTTP server.
// A nil *Metrics is valid and does nothing.
type Metrics struct {
	cfg Config
	reg *prometheus.Registry

	loginsConnected    prometheus.Gauge
	loginsDisconnected prometheus.Gauge
	messages           *prometheus.CounterVec
	omemoSessions      prometheus.Gauge
	decryptSeconds     prometheus.Histogram
	encryptSeconds     prometheus.Histogram
	reconnects         prometheus.Counter
	streams            *prometheus.CounterVec

	loginMu sync.Mutex
	logins  map[string]bool // login ID -> connected

	srv server
}

// New returns the bridge's metrics for cfg, or nil (a valid no-op) when cfg.Enabled is false.
func New(cfg Config) (*Metrics, error) {
	if !cfg.Enabled {
		return nil, nil
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return NewWithRegistry(cfg, prometheus.NewRegistry()), nil
}

// NewWithRegistry registers the collectors on reg (Go runtime and process collectors included)
// whatever cfg.Enabled says; tests and embedders use it directly.
func NewWithRegistry(cfg Config, reg *prometheus.Registry) *Metrics {
	m := &Metrics{
		cfg:    cfg,
		reg:    reg,
		logins: make(map[string]bool),
		loginsConnected: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "logins_connected",
			Help: "XMPP logins whose connection is up.",
		}),
		loginsDisconnected: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "logins_disconnected",
			Help: "XMPP logins that are known to the bridge but not connected (connecting, transient disconnect, bad credentials, error).",
		}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "messages_total",
			Help: "Messages handled by the bridge, by direction (xmpp_to_matrix, matrix_to_xmpp) and outcome (ok, undecryptable, failed_send).",
		}, []string{"direction", "outcome"}),
		omemoSessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "omemo_sessions",
			Help: "OMEMO sessions (our device with one remote device) held by the bridge.",
		}),
		decryptSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "omemo_decrypt_seconds",
			Help:    "Time to decrypt one incoming OMEMO message, store round trip included.",
			Buckets: cryptoBuckets,
		}),
		encryptSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "omemo_encrypt_seconds",
			Help:    "Time to encrypt one outgoing message for all recipient devices, store round trip included.",
			Buckets: cryptoBuckets,
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "xmpp_reconnects_total",
			Help: "XMPP reconnection attempts after a dropped connection.",
		}),
		streams: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "xmpp_streams_total",
			Help: "XMPP sessions started, by how (XEP-0198): resumed, resume_failed (then bound afresh), bound.",
		}, []string{"how"}),
	}
	for _, how := range streamHows {
		m.streams.WithLabelValues(how)
	}
	// Every direction/outcome pair exists from the start, so rate() and alerts see zeros, not gaps.
	for _, d := range directions {
		for _, o := range outcomes {
			m.messages.WithLabelValues(string(d), string(o))
		}
	}
	reg.MustRegister(
		m.loginsConnected, m.loginsDisconnected, m.messages, m.omemoSessions,
		m.decryptSeconds, m.encryptSeconds, m.reconnects, m.streams,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Registry is where the bridge may register collectors of its own; nil when disabled.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// SetLoginConnected records the connection state of one login. Counting per login ID keeps
// the gauges right when the same state is reported twice.
func (m *Metrics) SetLoginConnected(loginID string, connected bool) {
	if m == nil {
		return
	}
	m.loginMu.Lock()
	defer m.loginMu.Unlock()
	m.logins[loginID] = connected
	m.updateLoginGaugesLocked()
}

// RemoveLogin forgets a login (logged out or deleted).
func (m *Metrics) RemoveLogin(loginID string) {
	if m == nil {
		return
	}
	m.loginMu.Lock()
	defer m.loginMu.Unlock()
	delete(m.logins, loginID)
	m.updateLoginGaugesLocked()
}

func (m *Metrics) updateLoginGaugesLocked() {
	var up, down int
	for _, connected := range m.logins {
		if connected {
			up++
		} else {
			down++
		}
	}
	m.loginsConnected.Set(float64(up))
	m.loginsDisconnected.Set(float64(down))
}

// ObserveBridgeState maps a bridgev2 state event of one login onto the login gauges; call it
// next to every login.BridgeState.Send. Bridge-wide states (STARTING, RUNNING, ...) are ignored.
func (m *Metrics) ObserveBridgeState(loginID string, state status.BridgeStateEvent) {
	switch state {
	case status.StateConnected, status.StateBackfilling:
		m.SetLoginConnected(loginID, true)
	case status.StateConnecting, status.StateTransientDisconnect, status.StateBadCredentials, status.StateUnknownError:
		m.SetLoginConnected(loginID, false)
	case status.StateLoggedOut:
		m.RemoveLogin(loginID)
	}
}

// MessageBridged counts one message handled in direction d with outcome o.
func (m *Metrics) MessageBridged(d Direction, o Outcome) {
	if m == nil {
		return
	}
	m.messages.WithLabelValues(string(d), string(o)).Inc()
}

// SetOMEMOSessions sets the number of OMEMO sessions (e.g. a count from the store).
func (m *Metrics) SetOMEMOSessions(n int) {
	if m == nil {
		return
	}
	m.omemoSessions.Set(float64(n))
}

// AddOMEMOSessions changes the number of OMEMO sessions by delta (new session: 1, removed: -1).
func (m *Metrics) AddOMEMOSessions(delta int) {
	if m == nil {
		return
	}
	m.omemoSessions.Add(float64(delta))
}

// ObserveDecrypt records how long decrypting one OMEMO message took.
func (m *Metrics) ObserveDecrypt(d time.Duration) {
	if m == nil {
		return
	}
	m.decryptSeconds.Observe(d.Seconds())
}

// ObserveEncrypt records how long encrypting one outgoing message took.
func (m *Metrics) ObserveEncrypt(d time.Duration) {
	if m == nil {
		return
	}
	m.encryptSeconds.Observe(d.Seconds())
}

// XMPPReconnect counts one reconnection attempt of an XMPP login.
func (m *Metrics) XMPPReconnect() {
	if m == nil {
		return
	}
	m.reconnects.Inc()
}

// How an XMPP session started, for XMPPStream.
const (
	StreamResumed      = "resumed"
	StreamResumeFailed = "resume_failed"
	StreamBound        = "bound"
)

var streamHows = []string{StreamResumed, StreamResumeFailed, StreamBound}

// XMPPStream counts one XMPP session started: resumed (XEP-0198), a
// resumption the server refused, or a fresh bind.
func (m *Metrics) XMPPStream(how string) {
	if m == nil {
		return
	}
	m.streams.WithLabelValues(how).Inc()
}

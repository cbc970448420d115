package sm

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
)

// Defaults of Options.
const (
	DefaultAckEvery    = 5
	DefaultAckInterval = 10 * time.Second
	DefaultAckTimeout  = time.Minute
	DefaultMaxQueue    = 2000
	DefaultMaxBytes    = 16 << 20
)

// Options tune a Manager; zero values take the defaults.
type Options struct {
	// AckEvery asks for an acknowledgement once this many stanzas wait
	// for one.
	AckEvery int
	// AckInterval asks for one at this interval while any stanza waits
	// (and again when an answer is this late).
	AckInterval time.Duration
	// AckTimeout: a request the server has not answered for this long
	// means the stream is dead (a vanished peer, a hung server): the
	// connection is closed (Run), so that it is redialled and resumed.
	// It is what finds a dead stream while something is sent; an idle
	// one is left to TCP keepalive (xmpp/conn), which wakes no goroutine.
	AckTimeout time.Duration
	// MaxQueue and MaxBytes bound the stanzas kept for resending. Past
	// either the stream is no longer resumed (the queue is handed to
	// TakeLost at the next connection) so that memory stays bounded when
	// a server never acknowledges.
	MaxQueue int
	MaxBytes int
}

// Result says what the last negotiation did.
type Result struct {
	// Offered: the server offered stream management.
	Offered bool
	// Resumed: the previous stream was resumed (no bind); Resent stanzas
	// the server had not acknowledged were written again, and it had
	// Acked of ours.
	Resumed bool
	Resent  int
	// InH is the count of the server's stanzas we had handled (sent in
	// <resume/>); ServerH the server's count of ours (its <resumed/>).
	InH, ServerH uint32
	// ResumeFailed: a resumption was refused (then a fresh bind followed);
	// Condition is the server's reason.
	ResumeFailed bool
	Condition    string
	// Enabled: <enable/> was sent on a fresh bind.
	Enabled bool
}

// Stats are counters over the manager's life.
type Stats struct {
	Resumed, ResumeFailed, Enabled int
	// InH is the inbound h of the current stream; Unacked the stanzas
	// waiting for the server's acknowledgement.
	InH     uint32
	Unacked int
	// Acks and Requests received; BadAcks are <a/> the queue could not
	// match (a count beyond what was sent).
	AcksReceived, RequestsReceived, BadAcks int
	Lost                                    int
}

// Manager is the stream management of one account across its connections.
// Its methods are safe for concurrent use.
type Manager struct {
	opts Options

	mu  sync.Mutex
	gen uint64 // the current connection's number; older ones are ignored

	// The stream: id and address to resume, whether it may be.
	id        string
	resumable bool
	addr      jid.JID
	max       int

	inOn  bool // counting inbound stanzas (after <enabled/>, or resumed)
	inH   uint32
	outOn bool // keeping outbound stanzas (after <enable/>, or resumed)
	q     queue
	over  bool // the queue overflowed: do not resume

	lost []Stanza

	reqSent  time.Time // when the last <r/> went out (zero: none waiting)
	reqOpen  time.Time // when the oldest unanswered <r/> went out (zero: none)
	conn     *Conn     // the current connection (Wrap)
	sinceReq int       // stanzas kept since then
	kick     chan struct{}
	wake     chan struct{}   // the queue went from empty to not: Run arms its ticker
	runCtx   context.Context // of Start's session (nil: none)
	runS     *xmpp.Session
	running  atomic.Bool // Start's runner goroutine is up
	// epoch counts the outbound queues: it moves when the queue is
	// emptied without the server's acknowledgement (a new stream), not on
	// a resumption, whose count goes on. changed is closed (and replaced)
	// at every acknowledgement and every new epoch (WaitAcked).
	epoch     uint64
	changed   chan struct{}
	result    Result
	stats     Stats
	ackErrors []error
}

// New returns a Manager without a stream.
func New(opts Options) *Manager {
	if opts.AckEvery <= 0 {
		opts.AckEvery = DefaultAckEvery
	}
	if opts.AckInterval <= 0 {
		opts.AckInterval = DefaultAckInterval
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = DefaultAckTimeout
	}
	if opts.MaxQueue <= 0 {
		opts.MaxQueue = DefaultMaxQueue
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	return &Manager{opts: opts, kick: make(chan struct{}, 1), wake: make(chan struct{}, 1), changed: make(chan struct{})}
}

// Wrap returns the connection the session should use after SASL: pass it
// as the io.ReadWriter the SASL feature returns. It starts a new
// connection; the previous one's late reads and writes are ignored.
func (m *Manager) Wrap(c net.Conn) net.Conn {
	m.mu.Lock()
	m.gen++
	gen := m.gen
	m.inOn, m.outOn = false, false
	m.reqSent, m.reqOpen, m.sinceReq = time.Time{}, time.Time{}, 0
	m.result = Result{}
	sc := newConn(m, c, gen)
	m.conn = sc
	m.mu.Unlock()
	return sc
}

// LastResult is what the last negotiation did. The methods the
// application calls around a session (LastResult, Handler, Run, TakeLost,
// AckErrors) accept a nil Manager: no stream management.
func (m *Manager) LastResult() Result {
	if m == nil {
		return Result{}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.result
}

// Stats returns the manager's counters.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.stats
	st.InH = m.inH
	st.Unacked = len(m.q.items)
	return st
}

// TakeLost returns, and forgets, the stanzas written on a stream that
// could not be resumed and that its server never acknowledged: they may or
// may not have reached it.
func (m *Manager) TakeLost() []Stanza {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.lost
	m.lost = nil
	return l
}

// Reset forgets the stream (for example when the account's session is
// ended on purpose); unacknowledged stanzas go to TakeLost.
func (m *Manager) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dropStream()
}

// dropStream ends the stream: nothing to resume; the stanzas still waiting
// are lost. m.mu is held.
func (m *Manager) dropStream() {
	l := m.q.take()
	m.lost = append(m.lost, l...)
	m.stats.Lost += len(l)
	m.q.reset(0)
	m.id, m.resumable, m.over = "", false, false
	m.inOn, m.outOn, m.inH = false, false, 0
	m.newEpoch()
}

// newEpoch starts a new outbound queue; m.mu is held.
func (m *Manager) newEpoch() {
	m.epoch++
	m.signal()
}

// signal wakes the WaitAcked callers; m.mu is held.
func (m *Manager) signal() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// inbound is called by the reading splitter for each top-level element,
// once the decoder has consumed it.
func (m *Manager) inbound(gen uint64, e element) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen != m.gen {
		return
	}
	if e.isStanza() {
		if m.inOn {
			m.inH++
		}
		return
	}
	if !e.isSM() {
		return
	}
	switch e.Start.Name.Local {
	case "enabled":
		en := ParseEnabled(e.Start)
		m.id, m.resumable, m.max = en.ID, en.Resume && en.ID != "", en.Max
		m.inOn, m.inH = true, 0
		m.stats.Enabled++
	case "failed":
		// The answer to <enable/> (a failed <resume/> is read during
		// negotiation, before this connection counts anything).
		if m.outOn {
			m.q.reset(0)
			m.outOn, m.inOn = false, false
			m.newEpoch()
		}
	case "a":
		a, err := ParseAck(e.Start)
		m.stats.AcksReceived++
		if err == nil && m.outOn {
			err = m.q.ack(a.H)
		}
		if err != nil {
			m.stats.BadAcks++
			m.ackErrors = append(m.ackErrors, err)
		}
		m.reqSent, m.reqOpen, m.sinceReq = time.Time{}, time.Time{}, 0
		m.signal()
	case "r":
		m.stats.RequestsReceived++
	}
}

// outbound is called by the writing splitter for each top-level element
// whose last byte was written.
func (m *Manager) outbound(gen uint64, e element) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen != m.gen {
		return
	}
	if e.isSM() {
		switch e.Start.Name.Local {
		case "enable":
			// Both counts start here (XEP-0198 §4): the server counts our
			// stanzas from its receipt of <enable/>, we count its stanzas
			// from its <enabled/>, which it sends as it starts counting.
			m.q.reset(0)
			m.outOn, m.inOn, m.inH = true, false, 0
			m.over = false
			m.newEpoch()
		}
		// An <r/> was recorded as outstanding before it was written
		// (requesting).
		return
	}
	if !e.isStanza() || !m.outOn {
		return
	}
	st := Stanza{Raw: e.Raw, Name: e.Start.Name.Local, Written: time.Now()}
	st.ID, _ = attrValue(e.Start, "id")
	st.To, _ = attrValue(e.Start, "to")
	st.Type, _ = attrValue(e.Start, "type")
	m.q.push(st)
	if len(m.q.items) == 1 {
		select {
		case m.wake <- struct{}{}:
		default:
		}
		if m.runCtx != nil {
			m.startRunner()
		}
	}
	if len(m.q.items) > m.opts.MaxQueue || m.q.bytes > m.opts.MaxBytes {
		// Keep counting (acks stay right) but the stream is not resumed.
		m.over = true
	}
	m.sinceReq++
	if m.sinceReq >= m.opts.AckEvery {
		select {
		case m.kick <- struct{}{}:
		default:
		}
	}
}

// Handler wraps the session's handler: the server's <r/> is answered with
// the count of stanzas handled before it (Serve hands elements over one
// after another, so all of them have been), and stream management elements
// are not passed on.
func (m *Manager) Handler(h xmpp.Handler) xmpp.Handler {
	if m == nil {
		return h
	}
	return xmpp.HandlerFunc(func(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		if start.Name.Space != NS {
			return h.HandleXMPP(t, start)
		}
		if start.Name.Local != "r" {
			return nil
		}
		m.mu.Lock()
		on, hv := m.inOn, m.inH
		m.mu.Unlock()
		if !on {
			return nil
		}
		if _, err := xmlstream.Copy(t, Ack{H: hv}.TokenReader()); err != nil {
			return fmt.Errorf("failed to answer an ack request: %w", err)
		}
		return nil
	})
}

// Bind wraps mellium's resource binding feature (xmpp.BindResource()):
// resumption instead of binding when possible, stream management enabled
// after a fresh bind.
func (m *Manager) Bind(bind xmpp.StreamFeature) xmpp.StreamFeature {
	f := bind
	f.Negotiate = func(ctx context.Context, s *xmpp.Session, data interface{}) (xmpp.SessionState, io.ReadWriter, error) {
		_, offered := s.Feature(NS)
		m.mu.Lock()
		m.result.Offered = offered
		try := offered && m.resumable && !m.over && m.id != ""
		if !try {
			m.dropStream()
		}
		m.mu.Unlock()
		if try {
			ok, err := m.resume(ctx, s)
			if err != nil {
				return 0, nil, err
			}
			if ok {
				return xmpp.Ready, nil, nil
			}
		}
		mask, rw, err := bind.Negotiate(ctx, s, data)
		if err != nil || !offered {
			return mask, rw, err
		}
		m.mu.Lock()
		m.addr = s.LocalAddr()
		m.mu.Unlock()
		if err := writeFlush(s, Enable{Resume: true}.TokenReader()); err != nil {
			return mask, rw, fmt.Errorf("failed to enable stream management: %w", err)
		}
		m.mu.Lock()
		m.result.Enabled = true
		m.mu.Unlock()
		return mask, rw, nil
	}
	return f
}

// errNotSM is a negotiation answer that is not stream management.
var errNotSM = errors.New("sm: unexpected answer to <resume/>")

// resume sends <resume/> and reads the answer. ok false (and no error):
// refused; go on with a bind.
func (m *Manager) resume(ctx context.Context, s *xmpp.Session) (ok bool, err error) {
	m.mu.Lock()
	req := Resume{PrevID: m.id, H: m.inH}
	addr := m.addr
	m.mu.Unlock()
	if err := writeFlush(s, req.TokenReader()); err != nil {
		return false, fmt.Errorf("failed to send <resume/>: %w", err)
	}
	r := s.TokenReader()
	defer r.Close()
	var st xml.StartElement
	for {
		tok, err := r.Token()
		if err != nil {
			return false, fmt.Errorf("failed to read the answer to <resume/>: %w", err)
		}
		if se, isStart := tok.(xml.StartElement); isStart {
			st = se
			break
		}
	}
	if st.Name.Space != NS {
		return false, fmt.Errorf("%w: <%s xmlns='%s'>", errNotSM, st.Name.Local, st.Name.Space)
	}
	switch st.Name.Local {
	case "resumed":
		res, err := ParseResumed(st)
		if err != nil {
			return false, err
		}
		// Read to its end, so that Serve starts at the next element.
		if err := skipElement(r); err != nil {
			return false, err
		}
		if !s.UpdateAddr(addr) {
			return false, errors.New("sm: could not set the resumed session's address")
		}
		m.mu.Lock()
		ackErr := m.q.ack(res.H)
		pending := m.q.take()
		m.q.reset(res.H)
		// Both counts go on where the old connection left them.
		m.outOn, m.inOn = true, true
		m.stats.Resumed++
		m.result.Resumed, m.result.Resent = true, len(pending)
		m.result.InH, m.result.ServerH = req.H, res.H
		if ackErr != nil {
			m.stats.BadAcks++
			m.ackErrors = append(m.ackErrors, ackErr)
		}
		m.mu.Unlock()
		// The same bytes again: same ids. Written below the session's
		// encoder (nothing else writes during negotiation); the outbound
		// splitter keeps them again, counted from the server's h.
		for _, p := range pending {
			if _, err := s.Conn().Write(p.Raw); err != nil {
				return false, fmt.Errorf("failed to resend %d unacknowledged stanzas: %w", len(pending), err)
			}
		}
		return true, nil
	case "failed":
		f, err := DecodeFailed(r, st)
		if err != nil {
			return false, err
		}
		m.mu.Lock()
		if f.HasH {
			// What the server did get of ours is not lost.
			if err := m.q.ack(f.H); err != nil {
				m.ackErrors = append(m.ackErrors, err)
			}
		}
		m.dropStream()
		m.stats.ResumeFailed++
		m.result.ResumeFailed, m.result.Condition = true, f.Condition
		m.mu.Unlock()
		return false, nil
	default:
		return false, fmt.Errorf("%w: <%s/>", errNotSM, st.Name.Local)
	}
}

// AckErrors returns and forgets the acknowledgements that did not match
// the queue, for logging.
func (m *Manager) AckErrors() []error {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.ackErrors
	m.ackErrors = nil
	return e
}

func writeFlush(s *xmpp.Session, r xml.TokenReader) error {
	w := s.TokenWriter()
	defer w.Close()
	if _, err := xmlstream.Copy(w, r); err != nil {
		return err
	}
	return w.Flush()
}

// skipElement reads the rest of an element whose start was read.
func skipElement(r xml.TokenReader) error {
	for depth := 1; depth > 0; {
		tok, err := r.Token()
		if err != nil {
			return fmt.Errorf("sm: failed to read to the end of an element: %w", err)
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		}
	}
	return nil
}

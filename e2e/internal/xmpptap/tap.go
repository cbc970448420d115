package xmpptap

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Tap relays the bridge's client connections to an XMPP server's direct TLS
// port (see the package comment).
type Tap struct {
	ln     net.Listener
	server string
	upTLS  *tls.Config
	inTLS  *tls.Config
	led    ledger

	mu      sync.Mutex
	cur     *link
	conns   int
	bound   string
	match   func(raw []byte) bool
	deliver func(raw []byte, at time.Time)
	err     error
}

// link is one relayed connection.
type link struct {
	bridge, server net.Conn
	wmu            sync.Mutex // writes to the bridge, whole elements at a time
}

// ErrNoConnection is returned by Inject while no bridge connection is up.
var ErrNoConnection = errors.New("xmpptap: no bridge connection")

// Start listens on a loopback port for the bridge and relays each
// connection to server (host:port of a direct TLS c2s port, whose
// certificate roots verify for domain).
func Start(server, domain string, roots *x509.CertPool) (*Tap, error) {
	cert, err := selfSigned(domain)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("failed to listen for the bridge: %w", err)
	}
	t := &Tap{
		ln:     ln,
		server: server,
		upTLS:  &tls.Config{ServerName: domain, RootCAs: roots, NextProtos: []string{"xmpp-client"}, MinVersion: tls.VersionTLS12},
		inTLS:  &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"xmpp-client"}, MinVersion: tls.VersionTLS12},
	}
	go t.accept()
	return t, nil
}

// Addr is the address the bridge connects to, with direct TLS:
// "tls://127.0.0.1:port".
func (t *Tap) Addr() string { return "tls://" + t.ln.Addr().String() }

// Close stops listening and closes the connection relayed.
func (t *Tap) Close() {
	_ = t.ln.Close()
	t.mu.Lock()
	l := t.cur
	t.mu.Unlock()
	if l != nil {
		_ = l.bridge.Close()
		_ = l.server.Close()
	}
}

// Connections is how many bridge connections the tap has relayed: a
// benchmark checks it did not change across a phase (a resumption through
// the tap after injecting or swallowing is not translated).
func (t *Tap) Connections() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.conns
}

// BoundJID is the full JID the server bound for the current connection.
func (t *Tap) BoundJID() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.bound
}

// Translated is how many acknowledgements (<a/>, <resume/>, <resumed/>)
// the tap passed on with another h than they had: the bridge's toward the
// server, and the server's toward the bridge.
func (t *Tap) Translated() (toServer, toBridge int) {
	t.led.mu.Lock()
	defer t.led.mu.Unlock()
	return t.led.changed[0], t.led.changed[1]
}

// Err is the first relay error that was not a connection closing.
func (t *Tap) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Inject writes one whole stanza into the bridge's inbound stream, between
// two of the server's elements, as if the server had sent it.
func (t *Tap) Inject(raw []byte) error {
	t.mu.Lock()
	l := t.cur
	t.mu.Unlock()
	if l == nil {
		return ErrNoConnection
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if _, err := l.bridge.Write(raw); err != nil {
		return fmt.Errorf("failed to inject into the bridge's stream: %w", err)
	}
	t.led.in(true)
	return nil
}

// Capture swallows the bridge's outgoing message stanzas that match and
// hands each (a copy) to deliver with the time it was read, instead of
// forwarding it. deliver runs on the relay's goroutine: it must not block
// (nor Inject). Capture(nil, nil) forwards everything again.
func (t *Tap) Capture(match func(raw []byte) bool, deliver func(raw []byte, at time.Time)) {
	t.mu.Lock()
	t.match, t.deliver = match, deliver
	t.mu.Unlock()
}

func (t *Tap) fail(err error) {
	t.mu.Lock()
	if t.err == nil {
		t.err = err
	}
	t.mu.Unlock()
}

func (t *Tap) accept() {
	for {
		c, err := t.ln.Accept()
		if err != nil {
			return
		}
		go t.relay(c)
	}
}

func (t *Tap) relay(c net.Conn) {
	bridge := tls.Server(c, t.inTLS)
	if err := bridge.Handshake(); err != nil {
		_ = c.Close()
		t.fail(fmt.Errorf("failed the TLS handshake with the bridge: %w", err))
		return
	}
	d := tls.Dialer{Config: t.upTLS}
	server, err := d.Dial("tcp", t.server)
	if err != nil {
		_ = bridge.Close()
		t.fail(fmt.Errorf("failed to connect to the server: %w", err))
		return
	}
	l := &link{bridge: bridge, server: server}
	t.mu.Lock()
	t.cur, t.conns, t.bound = l, t.conns+1, ""
	t.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { t.down(l); done <- struct{}{} }()
	go func() { t.up(l); done <- struct{}{} }()
	<-done
	_ = bridge.Close()
	_ = server.Close()
	<-done
	t.mu.Lock()
	if t.cur == l {
		t.cur = nil
	}
	t.mu.Unlock()
}

// down relays the server's stream to the bridge.
func (t *Tap) down(l *link) {
	var (
		fr  Framer
		out []byte
		buf = make([]byte, 64<<10)
	)
	for {
		n, err := l.server.Read(buf)
		if n > 0 {
			quickAck(l.server)
			l.wmu.Lock()
			out = out[:0]
			fr.Feed(buf[:n], func(p Piece) {
				if !p.Top {
					out = append(out, p.Raw...)
					return
				}
				switch smName(p) {
				case "enabled":
					t.led.resetIn()
				case "a":
					out = append(out, smRewrite(p.Raw, t.led.toBridge)...)
					return
				case "resumed":
					out = append(out, smRewrite(p.Raw, t.led.toBridgeAll)...)
					return
				}
				if isStanza(p) {
					t.led.in(false)
					if p.Name == "iq" {
						t.noteBind(p.Raw)
					}
				}
				out = append(out, p.Raw...)
			})
			_, werr := l.bridge.Write(out)
			l.wmu.Unlock()
			if werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// up relays the bridge's stream to the server, less what Capture takes.
func (t *Tap) up(l *link) {
	var (
		fr  Framer
		out []byte
		buf = make([]byte, 64<<10)
	)
	for {
		n, err := l.bridge.Read(buf)
		if n > 0 {
			t.mu.Lock()
			match, deliver := t.match, t.deliver
			t.mu.Unlock()
			out = out[:0]
			fr.Feed(buf[:n], func(p Piece) {
				if !p.Top {
					out = append(out, p.Raw...)
					return
				}
				switch smName(p) {
				case "enable":
					t.led.resetOut()
				case "r":
					t.led.request()
				case "a", "resume":
					out = append(out, smRewrite(p.Raw, t.led.toServer)...)
					return
				}
				if isStanza(p) {
					if p.Name == "message" && match != nil && match(p.Raw) {
						t.led.swallow()
						deliver(bytes.Clone(p.Raw), time.Now())
						return
					}
				}
				out = append(out, p.Raw...)
			})
			if len(out) > 0 {
				if _, werr := l.server.Write(out); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// noteBind keeps the full JID of a resource binding result.
func (t *Tap) noteBind(raw []byte) {
	if Attr(raw, "type") != "result" || !bytes.Contains(raw, []byte("urn:ietf:params:xml:ns:xmpp-bind")) {
		return
	}
	_, rest, ok := bytes.Cut(raw, []byte("<jid>"))
	if !ok {
		return
	}
	j, _, ok := bytes.Cut(rest, []byte("</jid>"))
	if !ok {
		return
	}
	t.mu.Lock()
	t.bound = string(j)
	t.mu.Unlock()
}

package sm

import (
	"bufio"
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Conn is the authenticated connection as the session sees it: reads and
// writes pass through, each direction followed by a splitter that reports
// its top-level elements to the manager.
//
// Conn is an io.ByteReader, so encoding/xml's decoder reads from it a byte
// at a time rather than buffering ahead: what the inbound splitter has
// seen is exactly what the decoder has consumed.
type Conn struct {
	net.Conn
	m   *Manager
	gen uint64
	br  *bufio.Reader

	in  splitter // used by the reading goroutine only
	wmu sync.Mutex
	out splitter

	failed atomic.Pointer[error] // why the manager closed the connection
	raw    syscall.RawConn       // the TCP socket below, for quickAck; nil if none
}

var (
	_ net.Conn                              = (*Conn)(nil)
	_ interface{ ReadByte() (byte, error) } = (*Conn)(nil)
)

// readBuffer is the read buffer's size. Every connected login holds it
// while idle, so it is small: the TLS connection below keeps the whole
// decrypted record anyway, and a read from it is a copy (a 16 kB record is
// 32 reads instead of 4, each well under a microsecond).
const readBuffer = 512

func newConn(m *Manager, c net.Conn, gen uint64) *Conn {
	sc := &Conn{Conn: c, m: m, gen: gen, br: bufio.NewReaderSize(c, readBuffer)}
	// The stream was restarted after SASL: the first bytes each way are
	// the new stream headers, so both splitters start outside a stream.
	sc.raw = rawTCP(c)
	sc.in = splitter{emit: func(e element) {
		m.inbound(gen, e)
		// What we send nothing in answer to (the server's <a/>, a stanza
		// that came while the server's <r/> was outstanding) would have
		// its ACK wait for the delayed-ACK timer (40 ms on Linux), and a
		// server with Nagle's algorithm on (Prosody's default) holds its
		// next stanza to us until that ACK arrives: the sink benchmark's
		// slowest messages (docs/scaling.md). A stanza followed by more
		// bytes already read (the server's <r/>, which we answer at once,
		// carrying the ACK) needs none: a setsockopt and an ACK packet
		// less per message in the steady state.
		if (e.isSM() && e.Start.Name.Local == "a") || (e.isStanza() && sc.br.Buffered() == 0) {
			_ = quickAck(sc.raw)
		}
	}}
	sc.out = splitter{capture: true, emit: func(e element) { m.outbound(gen, e) }}
	return sc
}

// ReadByte implements io.ByteReader.
func (c *Conn) ReadByte() (byte, error) {
	b, err := c.br.ReadByte()
	if err != nil {
		return b, c.why(err)
	}
	// Text is most of a stanza's bytes (an OMEMO key per device, the
	// payload) and only a '<' in it changes the inbound splitter's state:
	// the rest skips the call.
	if c.in.capture || c.in.st != stText || b == '<' {
		c.in.byte(b)
	}
	return b, nil
}

// Read implements io.Reader.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.br.Read(p)
	c.in.writeBytes(p[:n])
	return n, c.why(err)
}

// fail closes the connection; reads and writes then fail with err.
func (c *Conn) fail(err error) {
	c.failed.CompareAndSwap(nil, &err)
	_ = c.Conn.Close()
}

// why is a read's or write's error: the reason the manager closed the
// connection, if it did (mellium's Serve returns the error of its last
// write, the stream error it sends after a failed read).
func (c *Conn) why(err error) error {
	if err != nil {
		if f := c.failed.Load(); f != nil {
			return *f
		}
	}
	return err
}

// Write implements io.Writer. Only the bytes written without error are
// followed: a stanza whose end did not get out is not kept for
// resending, as its sender got the error.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	n, err := c.Conn.Write(p)
	c.out.writeBytes(p[:n])
	return n, c.why(err)
}

// SetDeadline and SetWriteDeadline ignore the deadline. mellium ends a
// send whose context ends by setting a past write deadline from a
// goroutine that can run after the send returned; every IQ's context ends
// right after its send, so the deadline could land in another sender's
// write, and a TLS connection whose write timed out is broken for good
// (the stream dropped and resumed, under load several times a minute). A
// write that cannot finish ends with the socket's TCP_USER_TIMEOUT
// (xmpp/conn) or when the manager fails the connection for an ack request
// left unanswered. Read deadlines (mellium's close deadline) pass through.
func (c *Conn) SetDeadline(time.Time) error { return nil }

// SetWriteDeadline: see SetDeadline.
func (c *Conn) SetWriteDeadline(time.Time) error { return nil }

// ConnectionState is the TLS state of the connection below, for mellium
// (channel binding, Session.ConnectionState).
func (c *Conn) ConnectionState() tls.ConnectionState {
	if tc, ok := c.Conn.(interface{ ConnectionState() tls.ConnectionState }); ok {
		return tc.ConnectionState()
	}
	return tls.ConnectionState{}
}

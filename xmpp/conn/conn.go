package conn

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/dial"
	"mellium.im/xmpp/jid"
)

// DefaultTimeout bounds dialing plus stream negotiation when Config.Timeout
// is zero.
const DefaultTimeout = 30 * time.Second

// Config says how to reach and authenticate one account.
type Config struct {
	// JID is the account; only its bare part is used.
	JID      jid.JID
	Password string

	// Host and Port override the DNS SRV lookup. Port 0 means 5222, or
	// 5223 when DirectTLS is set.
	Host      string
	Port      uint16
	DirectTLS bool

	// InsecureTLSHosts names hosts (JID domain or Host) whose certificate
	// is accepted without verification, for self-signed test servers.
	InsecureTLSHosts []string

	// AllowPlain adds SASL PLAIN after the SCRAM mechanisms, for servers
	// whose backend cannot do SCRAM. It is still only ever sent over TLS.
	AllowPlain bool

	Timeout time.Duration
}

// ParseJID parses and validates an account address: it must have a
// localpart and a domainpart; a resource is dropped.
func ParseJID(s string) (jid.JID, error) {
	j, err := jid.Parse(strings.TrimSpace(s))
	if err != nil {
		return jid.JID{}, fmt.Errorf("%w: %w", ErrBadJID, err)
	}
	if j.Localpart() == "" || j.Domainpart() == "" {
		return jid.JID{}, fmt.Errorf("%w: %q has no user part", ErrBadJID, s)
	}
	return j.Bare(), nil
}

// ParseServer parses a server override as typed by a user: "" (or "auto",
// "-") for DNS SRV lookup, "host", "host:port", or "tls://host[:port]" for
// direct TLS instead of STARTTLS.
func ParseServer(s string) (host string, port uint16, directTLS bool, err error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "", "auto", "-", "none", "default":
		return "", 0, false, nil
	}
	if rest, ok := strings.CutPrefix(s, "tls://"); ok {
		s, directTLS = rest, true
	} else if rest, ok := strings.CutPrefix(s, "xmpp://"); ok {
		s = rest
	}
	host = s
	if h, p, splitErr := net.SplitHostPort(s); splitErr == nil {
		n, convErr := strconv.ParseUint(p, 10, 16)
		if convErr != nil || n == 0 {
			return "", 0, false, fmt.Errorf("invalid port %q", p)
		}
		host, port = h, uint16(n)
	}
	if host == "" || strings.ContainsAny(host, "/ @") {
		return "", 0, false, fmt.Errorf("invalid server %q, expected host or host:port", s)
	}
	return host, port, directTLS, nil
}

// Addr is the explicit address Dial connects to, or "" for SRV lookup.
func (c Config) Addr() string {
	if c.Host == "" {
		return ""
	}
	port := c.Port
	if port == 0 {
		port = 5222
		if c.DirectTLS {
			port = 5223
		}
	}
	return net.JoinHostPort(c.Host, strconv.Itoa(int(port)))
}

func (c Config) insecureHost() bool {
	for _, h := range c.InsecureTLSHosts {
		h = strings.TrimSpace(h)
		if h != "" && (strings.EqualFold(h, c.JID.Domainpart()) || strings.EqualFold(h, c.Host)) {
			return true
		}
	}
	return false
}

func (c Config) tlsConfig(directTLS bool) *tls.Config {
	cfg := &tls.Config{
		ServerName: c.JID.Domainpart(),
		MinVersion: tls.VersionTLS12,
		// Only for an explicitly named host: the admin or user typed it.
		InsecureSkipVerify: c.insecureHost(), //nolint:gosec
	}
	if directTLS {
		cfg.NextProtos = []string{"xmpp-client"}
	}
	return cfg
}

func (c Config) mechanisms() []sasl.Mechanism {
	m := []sasl.Mechanism{sasl.ScramSha256Plus, sasl.ScramSha1Plus, sasl.ScramSha256, sasl.ScramSha1}
	if c.AllowPlain {
		m = append(m, sasl.Plain)
	}
	return m
}

// Dial connects, secures, authenticates and binds a session for c.JID.
// The caller serves and closes the returned session. Every error wraps one
// of the package's sentinel errors.
func Dial(ctx context.Context, c Config) (*xmpp.Session, error) {
	if c.JID.Localpart() == "" || c.JID.Domainpart() == "" {
		return nil, fmt.Errorf("%w: %q", ErrBadJID, c.JID.String())
	}
	c.JID = c.JID.Bare()
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	netConn, err := c.dial(ctx)
	if err != nil {
		return nil, classify(stageDial, err)
	}
	_, isTLS := netConn.(*tls.Conn)
	var features []xmpp.StreamFeature
	if !isTLS {
		features = append(features, startTLS(c.tlsConfig(false)))
	}
	features = append(features, saslFeature(c.Password, c.mechanisms()), xmpp.BindResource())

	s, err := xmpp.NewClientSession(ctx, c.JID, netConn, features...)
	if err != nil {
		_ = netConn.Close()
		return nil, classify(stageStream, err)
	}
	state := s.State()
	switch {
	case state&xmpp.Secure == 0:
		_ = s.Close()
		_ = netConn.Close()
		return nil, fmt.Errorf("%w: stream was not secured", ErrNoTLS)
	case state&xmpp.Authn == 0:
		_ = s.Close()
		_ = netConn.Close()
		return nil, fmt.Errorf("%w: server offered no SASL mechanism over TLS", ErrAuthFailed)
	}
	return s, nil
}

func (c Config) dial(ctx context.Context) (net.Conn, error) {
	if addr := c.Addr(); addr != "" {
		var d net.Dialer
		if c.DirectTLS {
			td := tls.Dialer{NetDialer: &d, Config: c.tlsConfig(true)}
			return td.DialContext(ctx, "tcp", addr)
		}
		return d.DialContext(ctx, "tcp", addr)
	}
	d := dial.Dialer{TLSConfig: c.tlsConfig(true)}
	return d.Dial(ctx, "tcp", c.JID)
}

// startTLS is mellium's STARTTLS feature, but it finishes the TLS handshake
// inside the feature so that certificate and protocol failures are reported
// as such rather than as a broken stream later.
func startTLS(cfg *tls.Config) xmpp.StreamFeature {
	f := xmpp.StartTLS(cfg)
	negotiate := f.Negotiate
	f.Negotiate = func(ctx context.Context, s *xmpp.Session, data interface{}) (xmpp.SessionState, io.ReadWriter, error) {
		mask, rw, err := negotiate(ctx, s, data)
		if err != nil {
			return mask, rw, classify(stageTLS, err)
		}
		if tc, ok := rw.(*tls.Conn); ok {
			if err := tc.HandshakeContext(ctx); err != nil {
				return mask, rw, classify(stageTLS, err)
			}
		}
		return mask, rw, nil
	}
	return f
}

// saslFeature is mellium's SASL feature (which already requires a secured
// stream) with its failures classified.
func saslFeature(password string, mechs []sasl.Mechanism) xmpp.StreamFeature {
	f := xmpp.SASL("", password, mechs...)
	negotiate := f.Negotiate
	f.Negotiate = func(ctx context.Context, s *xmpp.Session, data interface{}) (xmpp.SessionState, io.ReadWriter, error) {
		mask, rw, err := negotiate(ctx, s, data)
		if err != nil {
			return mask, rw, classify(stageSASL, err)
		}
		return mask, rw, nil
	}
	return f
}

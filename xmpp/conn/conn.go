package conn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/dial"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/sm"
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

	// Resolver is used for the DNS SRV lookups (RFC 6120 _xmpp-client._tcp,
	// XEP-0368 _xmpps-client._tcp) and for resolving host names. nil means
	// net.DefaultResolver.
	Resolver *net.Resolver

	Timeout time.Duration

	// Keepalive is the silence after which the kernel probes the
	// connection (TCP keepalive, keepalive.go); 0: DefaultKeepalive.
	Keepalive time.Duration

	// SM, when set, is the account's XEP-0198 stream management: the
	// authenticated stream goes through it, a previous stream is resumed
	// instead of bound when possible, and a fresh bind enables it.
	SM *sm.Manager

	// tlsMaxVersion caps the TLS version (0: crypto/tls default); tests
	// only, to reach the TLS 1.2 channel binding (tls-unique).
	tlsMaxVersion uint16
	// noChannelBinding leaves out the -PLUS mechanisms: the retry after a
	// refused channel binding.
	noChannelBinding bool
	// forceChannelBinding uses -PLUS whenever offered, XEP-0440 or not;
	// tests only, to reach a server's refusal of tls-exporter.
	forceChannelBinding bool
}

// Info says how Dial authenticated, for logs and tests. Fields are empty
// for the steps the connection did not reach.
type Info struct {
	// Offered is the server's list of SASL mechanisms, in its order.
	Offered []string
	// Mechanism is the SASL mechanism chosen from Offered, e.g.
	// "SCRAM-SHA-256-PLUS".
	Mechanism string
	// ChannelBinding is the channel binding type a -PLUS mechanism used
	// ("tls-exporter" on TLS 1.3, "tls-unique" on TLS 1.2), else "".
	ChannelBinding string
	// ChannelBindingTypes is what the server announced through XEP-0440
	// (sasl-channel-binding); nil when it announced nothing.
	ChannelBindingTypes []string
	// ChannelBindingRefused is the channel binding type of a -PLUS attempt
	// the server refused, after which Dial logged in without channel
	// binding (see channelbinding.go); "" when that did not happen.
	ChannelBindingRefused string
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
		MaxVersion: c.tlsMaxVersion,
		// Only for an explicitly named host: the admin or user typed it.
		InsecureSkipVerify: c.insecureHost(), //nolint:gosec
	}
	if directTLS {
		cfg.NextProtos = []string{"xmpp-client"}
	}
	return cfg
}

// mechanisms is the client's SASL preference order: channel-bound SCRAM
// first, then plain SCRAM, PLAIN last and only when allowed. The SASL
// feature is only negotiated on a secured stream, so none of them is ever
// used without TLS.
func (c Config) mechanisms() []sasl.Mechanism {
	m := []sasl.Mechanism{sasl.ScramSha256Plus, sasl.ScramSha1Plus, sasl.ScramSha256, sasl.ScramSha1}
	for i := range m {
		m[i] = boundIterations(m[i])
	}
	if c.AllowPlain {
		m = append(m, sasl.Plain)
	}
	return m
}

// Dial connects, secures, authenticates and binds a session for c.JID.
// The caller serves and closes the returned session. Every error wraps one
// of the package's sentinel errors.
func Dial(ctx context.Context, c Config) (*xmpp.Session, error) {
	s, _, err := DialInfo(ctx, c)
	return s, err
}

// DialInfo is Dial that also reports the SASL negotiation (also when it
// fails).
func DialInfo(ctx context.Context, c Config) (*xmpp.Session, Info, error) {
	var info Info
	s, err := c.dialSession(ctx, &info)
	if err == nil || !channelBindingRefusal(&info, err) || ctx.Err() != nil {
		return s, info, err
	}
	// A -PLUS attempt failed: the server may have refused the binding, not
	// the password (servers say not-authorized to both). Try once without;
	// only if that fails too is the password wrong.
	refused := info.ChannelBinding
	retry := c
	retry.noChannelBinding = true
	var info2 Info
	s, err2 := retry.dialSession(ctx, &info2)
	info2.ChannelBindingRefused = refused
	if err2 == nil {
		cbRefusedHosts.Store(c.cbKey(), struct{}{})
		return s, info2, nil
	}
	if errors.Is(err2, ErrWrongPassword) || errors.Is(err2, ErrAuthFailed) {
		return nil, info2, err2
	}
	// The retry did not get as far as SASL (network, TLS): report the
	// first failure's class only when it cannot be a binding refusal.
	return nil, info2, fmt.Errorf("%w (after the server refused %s channel binding: %s)", err2, refused, strings.TrimSpace(saslText(err)))
}

func (c Config) dialSession(ctx context.Context, info *Info) (*xmpp.Session, error) {
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
	_, refusedHere := cbRefusedHosts.Load(c.cbKey())
	noCB := c.noChannelBinding || refusedHere
	offer := &cbOffer{}
	features = append(features, cbFeature(offer),
		saslFeature(c.Password, recordMechanisms(info, c.mechanisms()), info, offer, noCB, c.forceChannelBinding && !noCB, c.SM),
		c.bindFeature())

	// mellium wakes its reads when ctx ends by setting a past deadline and
	// at once clearing it again, which races with the blocked read: a
	// stalled server could hold Dial far beyond the timeout. So when ctx
	// ends before the negotiation does, close the connection.
	raw := netConn
	if tc, ok := netConn.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	var (
		mu                 sync.Mutex
		negotiated, closed bool
	)
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !negotiated {
			closed = true
			_ = raw.Close()
		}
	})
	s, err := xmpp.NewClientSession(ctx, c.JID, netConn, features...)
	mu.Lock()
	negotiated = true
	mu.Unlock()
	stop()
	if closed || (err != nil && ctx.Err() != nil) {
		// Timed out (or cancelled) mid-negotiation, whatever error that
		// surfaced as (%v: it must not add a second sentinel).
		_ = netConn.Close()
		if err == nil {
			return nil, fmt.Errorf("%w: stream negotiation: %w", ErrUnreachable, ctx.Err())
		}
		return nil, fmt.Errorf("%w: stream negotiation: %w (%v)", ErrUnreachable, ctx.Err(), err)
	}
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
		d := c.netDialer()
		if c.DirectTLS {
			td := tls.Dialer{NetDialer: &d, Config: c.tlsConfig(true)}
			return td.DialContext(ctx, "tcp", addr)
		}
		return d.DialContext(ctx, "tcp", addr)
	}
	// SRV lookup of _xmpps-client._tcp (direct TLS) and _xmpp-client._tcp
	// (STARTTLS) with the A/AAAA fallbacks on ports 5223 and 5222.
	d := dial.Dialer{Dialer: c.netDialer(), TLSConfig: c.tlsConfig(true)}
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
// stream) with its failures classified, the server's offer recorded and
// the -PLUS mechanisms left out where channel binding is not to be used
// (see channelbinding.go).
func saslFeature(password string, mechs []sasl.Mechanism, info *Info, offer *cbOffer, noCB, forceCB bool, m *sm.Manager) xmpp.StreamFeature {
	f := xmpp.SASL("", password, mechs...)
	negotiate := f.Negotiate
	f.Negotiate = func(ctx context.Context, s *xmpp.Session, data interface{}) (xmpp.SessionState, io.ReadWriter, error) {
		if offered, ok := data.([]string); ok {
			info.Offered = append([]string(nil), offered...)
			if offer.announced {
				info.ChannelBindingTypes = append([]string{}, offer.types...)
			}
			if !forceCB && !useChannelBinding(s.ConnectionState().Version, *offer, noCB) {
				plain := withoutPlus(offered)
				if len(plain) == 0 && noCB {
					return 0, nil, fmt.Errorf("%w: the server offers only channel-bound mechanisms (%s) and refused the channel binding", ErrAuthFailed, strings.Join(offered, ", "))
				}
				if len(plain) > 0 || noCB {
					data = plain
				}
			}
		}
		mask, rw, err := negotiate(ctx, s, data)
		if err != nil {
			return mask, rw, classify(stageSASL, err)
		}
		// The stream restarts on rw: from here on it goes through stream
		// management's connection (xmpp/sm).
		if nc, ok := rw.(net.Conn); ok && m != nil {
			rw = m.Wrap(nc)
		}
		return mask, rw, nil
	}
	return f
}

// bindFeature is mellium's resource binding, through stream management
// when the config has it.
func (c Config) bindFeature() xmpp.StreamFeature {
	if c.SM == nil {
		return xmpp.BindResource()
	}
	return c.SM.Bind(xmpp.BindResource())
}

// recordMechanisms wraps each mechanism so that the one mellium picks
// records its name, and for SCRAM the channel binding type from the GS2
// header of its first message, into info.
func recordMechanisms(info *Info, mechs []sasl.Mechanism) []sasl.Mechanism {
	out := make([]sasl.Mechanism, len(mechs))
	for i, m := range mechs {
		start := m.Start
		name := m.Name
		m.Start = func(n *sasl.Negotiator) (bool, []byte, interface{}, error) {
			more, resp, cache, err := start(n)
			info.Mechanism = name
			info.ChannelBinding = ""
			if strings.HasPrefix(name, "SCRAM-") {
				// gs2-cbind-flag: "p=<cb-name>", "y" or "n".
				if cb, ok := strings.CutPrefix(string(resp), "p="); ok {
					info.ChannelBinding, _, _ = strings.Cut(cb, ",")
				}
			}
			return more, resp, cache, err
		}
		out[i] = m
	}
	return out
}

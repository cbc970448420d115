package conn

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
)

// fakeSASLFailure mimics mellium's internal SASL failure type.
type fakeSASLFailure struct {
	Condition fakeCondition
	Text      string
}

type fakeCondition string

func (c fakeCondition) String() string { return string(c) }

func (f fakeSASLFailure) Error() string { return f.Text }

func TestClassify(t *testing.T) {
	opErr := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	for _, tc := range []struct {
		name  string
		stage stage
		err   error
		want  error
	}{
		{"dial refused", stageDial, opErr, ErrUnreachable},
		{"dns", stageDial, &net.DNSError{Err: "no such host", Name: "x.invalid"}, ErrUnreachable},
		{"no srv", stageDial, errors.New("no xmpp service found at address x"), ErrUnreachable},
		{"dial cert", stageDial, x509.UnknownAuthorityError{}, ErrCertificate},
		{"tls cert", stageTLS, &tls.CertificateVerificationError{Err: errors.New("bad")}, ErrCertificate},
		{"hostname", stageTLS, x509.HostnameError{Host: "x"}, ErrCertificate},
		{"tls refused", stageTLS, errors.New("xmpp: receiver indicated that TLS negotiation failed"), ErrNoTLS},
		{"tls eof", stageTLS, io.EOF, ErrNoTLS},
		{"direct tls to plain port", stageDial, tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, ErrNoTLS},
		{"sasl not-authorized", stageSASL, fakeSASLFailure{Condition: "not-authorized", Text: "Unable to authorize you"}, ErrWrongPassword},
		{"sasl wrapped", stageSASL, fmt.Errorf("x: %w", fakeSASLFailure{Condition: "not-authorized"}), ErrWrongPassword},
		{"sasl disabled", stageSASL, fakeSASLFailure{Condition: "account-disabled"}, ErrAuthFailed},
		{"sasl no mechanism", stageSASL, errors.New("xmpp: no matching SASL mechanisms found"), ErrAuthFailed},
		{"stream eof", stageStream, io.ErrUnexpectedEOF, ErrUnreachable},
		{"stream timeout", stageStream, &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, ErrUnreachable},
		{"starttls timeout", stageTLS, &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, ErrUnreachable},
		{"sasl timeout", stageSASL, context.DeadlineExceeded, ErrUnreachable},
		{"stream other", stageStream, errors.New("xmpp: features advertised out of order"), ErrStream},
		{"already classified", stageStream, fmt.Errorf("%w: x", ErrWrongPassword), ErrWrongPassword},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.stage, tc.err)
			if !errors.Is(got, tc.want) {
				t.Fatalf("classify(%v) = %v, want %v", tc.err, got, tc.want)
			}
			n := 0
			for _, s := range []error{ErrBadJID, ErrUnreachable, ErrNoTLS, ErrCertificate, ErrWrongPassword, ErrAuthFailed, ErrStream} {
				if errors.Is(got, s) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("classify(%v) = %v wraps %d sentinels, want 1", tc.err, got, n)
			}
		})
	}
	if !IsPermanent(classify(stageSASL, fakeSASLFailure{Condition: "not-authorized"})) {
		t.Error("wrong password should be permanent")
	}
	if IsPermanent(classify(stageDial, opErr)) {
		t.Error("unreachable should not be permanent")
	}
}

func TestParseJID(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"alice@example.org", "alice@example.org", false},
		{"  Alice@Example.org/phone ", "alice@example.org", false},
		{"example.org", "", true},
		{"@example.org", "", true},
		{"alice@", "", true},
		{"", "", true},
		{"a b@example.org", "", true},
	} {
		got, err := ParseJID(tc.in)
		if tc.wantErr {
			if !errors.Is(err, ErrBadJID) {
				t.Errorf("ParseJID(%q) err = %v, want ErrBadJID", tc.in, err)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("ParseJID(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParseServer(t *testing.T) {
	for _, tc := range []struct {
		in      string
		host    string
		port    uint16
		direct  bool
		wantErr bool
	}{
		{"", "", 0, false, false},
		{"auto", "", 0, false, false},
		{"-", "", 0, false, false},
		{"xmpp.example.org", "xmpp.example.org", 0, false, false},
		{"127.0.0.1:15222", "127.0.0.1", 15222, false, false},
		{"tls://xmpp.example.org:5223", "xmpp.example.org", 5223, true, false},
		{"[::1]:5222", "::1", 5222, false, false},
		{"host:0", "", 0, false, true},
		{"host:99999", "", 0, false, true},
		{"user@host", "", 0, false, true},
	} {
		host, port, direct, err := ParseServer(tc.in)
		if (err != nil) != tc.wantErr || host != tc.host || port != tc.port || direct != tc.direct {
			t.Errorf("ParseServer(%q) = %q, %d, %v, %v", tc.in, host, port, direct, err)
		}
	}
}

func TestConfigTLS(t *testing.T) {
	j := jid.MustParse("alice@localhost")
	for _, tc := range []struct {
		hosts    []string
		host     string
		insecure bool
	}{
		{nil, "", false},
		{[]string{"localhost"}, "", true},
		{[]string{"LocalHost"}, "127.0.0.1", true},
		{[]string{"127.0.0.1"}, "127.0.0.1", true},
		{[]string{"example.org"}, "127.0.0.1", false},
		{[]string{""}, "", false},
	} {
		c := Config{JID: j, Host: tc.host, InsecureTLSHosts: tc.hosts}
		cfg := c.tlsConfig(false)
		if cfg.InsecureSkipVerify != tc.insecure || cfg.ServerName != "localhost" || cfg.MinVersion < tls.VersionTLS12 {
			t.Errorf("hosts %v host %q: insecure=%v server=%q", tc.hosts, tc.host, cfg.InsecureSkipVerify, cfg.ServerName)
		}
	}
	if got := (Config{JID: j, Host: "h"}).Addr(); got != "h:5222" {
		t.Errorf("Addr = %q", got)
	}
	if got := (Config{JID: j, Host: "h", DirectTLS: true}).Addr(); got != "h:5223" {
		t.Errorf("Addr = %q", got)
	}
}

func listen(t *testing.T) (net.Listener, uint16) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	_, p, _ := net.SplitHostPort(l.Addr().String())
	port, _ := strconv.Atoi(p)
	return l, uint16(port)
}

// A server that accepts the connection and then says nothing: Dial gives
// up at its timeout.
func TestDialStalledServer(t *testing.T) {
	l, port := listen(t)
	release := make(chan struct{})
	defer close(release)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		<-release
		_ = c.Close()
	}()
	start := time.Now()
	_, err := Dial(context.Background(), Config{JID: jid.MustParse("a@localhost"), Password: "x", Host: "127.0.0.1", Port: port, Timeout: time.Second})
	if !errors.Is(err, ErrUnreachable) || errors.Is(err, ErrNoTLS) || errors.Is(err, ErrStream) {
		t.Errorf("err = %v, want ErrUnreachable only", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Dial took %v with a 1s timeout", d)
	}

	// Cancelling the caller's context also ends a stalled negotiation.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start = time.Now()
	_, err = Dial(ctx, Config{JID: jid.MustParse("a@localhost"), Password: "x", Host: "127.0.0.1", Port: port, Timeout: time.Minute})
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want ErrUnreachable (context canceled)", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Dial took %v after cancellation", d)
	}
}

func TestDialUnreachable(t *testing.T) {
	l, port := listen(t)
	_ = l.Close()
	_, err := Dial(context.Background(), Config{JID: jid.MustParse("a@localhost"), Host: "127.0.0.1", Port: port, Timeout: 5 * time.Second})
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
}

// A server that answers like XMPP but refuses STARTTLS.
func TestDialNoTLS(t *testing.T) {
	l, port := listen(t)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		_, _ = r.ReadString('>') // <?xml ...?> or <stream:stream ...>
		_, _ = io.WriteString(c, `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='x' from='localhost' version='1.0'>`+
			`<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>`)
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if strings.Contains(string(buf[:n]), "starttls") {
				_, _ = io.WriteString(c, `<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>`)
				return
			}
		}
	}()
	_, err := Dial(context.Background(), Config{JID: jid.MustParse("a@localhost"), Password: "x", Host: "127.0.0.1", Port: port, Timeout: 5 * time.Second})
	if !errors.Is(err, ErrNoTLS) {
		t.Fatalf("err = %v, want ErrNoTLS", err)
	}
}

// A direct-TLS server with a self-signed certificate: rejected unless its
// host is named, then the stream goes on to fail later (it is not XMPP).
func TestDialSelfSigned(t *testing.T) {
	cert := selfSigned(t)
	l, port := listen(t)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
				_ = tc.Handshake()
				time.Sleep(100 * time.Millisecond)
				_ = tc.Close()
			}()
		}
	}()
	cfg := Config{JID: jid.MustParse("a@localhost"), Password: "x", Host: "127.0.0.1", Port: port, DirectTLS: true, Timeout: 5 * time.Second}
	_, err := Dial(context.Background(), cfg)
	if !errors.Is(err, ErrCertificate) {
		t.Fatalf("err = %v, want ErrCertificate", err)
	}
	cfg.InsecureTLSHosts = []string{"localhost"}
	_, err = Dial(context.Background(), cfg)
	if err == nil || errors.Is(err, ErrCertificate) {
		t.Fatalf("err = %v, want a non-certificate failure", err)
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

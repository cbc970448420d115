package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"encoding/xml"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

func TestMain(m *testing.M) { Main(m) }

func certPool(t *testing.T, p *Prosody) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(p.CertFile())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in CertFile")
	}
	return pool
}

var mechs = []sasl.Mechanism{sasl.ScramSha256Plus, sasl.ScramSha256, sasl.ScramSha1Plus, sasl.ScramSha1}

func login(ctx context.Context, addr string, j jid.JID, pass string, cfg *tls.Config, direct bool) (*xmpp.Session, error) {
	var conn net.Conn
	var err error
	features := []xmpp.StreamFeature{xmpp.SASL("", pass, mechs...), xmpp.BindResource()}
	if direct {
		conn, err = tls.Dial("tcp", addr, cfg)
	} else {
		conn, err = net.Dial("tcp", addr)
		features = append([]xmpp.StreamFeature{xmpp.StartTLS(cfg)}, features...)
	}
	if err != nil {
		return nil, err
	}
	s, err := xmpp.NewClientSession(ctx, j, conn, features...)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

type bodyMsg struct {
	stanza.Message
	Body string `xml:"body"`
}

func TestProsody(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := StartProsody(t, ProsodyOptions{})
	alice := p.CreateAccount(t, "alice", "alicepw")
	bob := p.CreateAccount(t, "bob", "bobpw")
	if alice != "alice@localhost" || p.Domain() != "localhost" {
		t.Fatalf("CreateAccount = %q, Domain = %q", alice, p.Domain())
	}
	aj, bj := jid.MustParse(alice+"/test"), jid.MustParse(bob+"/test")

	// The certificate is self-signed: default verification must fail.
	if s, err := login(ctx, p.Addr(), aj, "alicepw", &tls.Config{ServerName: "localhost"}, false); err == nil {
		s.Close()
		t.Fatal("login verified Prosody's self-signed certificate against the system roots")
	}
	pinned := &tls.Config{ServerName: "localhost", RootCAs: certPool(t, p), MinVersion: tls.VersionTLS12}
	if s, err := login(ctx, p.Addr(), aj, "wrongpw", pinned, false); err == nil {
		s.Close()
		t.Fatal("login with a wrong password succeeded")
	}

	a, err := login(ctx, p.Addr(), aj, "alicepw", pinned, false)
	if err != nil {
		t.Fatalf("STARTTLS login: %v", err)
	}
	defer a.Close()
	if a.ConnectionState().Version < tls.VersionTLS12 {
		t.Fatalf("TLS version %x", a.ConnectionState().Version)
	}
	go func() { _ = a.Serve(nil) }()

	for _, c := range []struct {
		to   string
		want []string
	}{
		{"localhost", []string{"urn:xmpp:carbons:2", "urn:xmpp:ping", "urn:xmpp:blocking"}},
		{alice, []string{"urn:xmpp:mam:2", "http://jabber.org/protocol/pubsub#publish"}},
		{p.MUCDomain(), []string{"http://jabber.org/protocol/muc"}},
		{p.UploadDomain(), []string{"urn:xmpp:http:upload:0"}},
	} {
		info, err := disco.GetInfo(ctx, "", jid.MustParse(c.to), a)
		if err != nil {
			t.Fatalf("disco#info %s: %v", c.to, err)
		}
		var got []string
		for _, f := range info.Features {
			got = append(got, f.Var)
		}
		for _, w := range c.want {
			if !slices.Contains(got, w) {
				t.Errorf("disco#info %s lacks %s; has %v", c.to, w, got)
			}
		}
	}

	checkUpload(ctx, t, a, p)

	err = a.Encode(ctx, bodyMsg{Message: stanza.Message{To: bj.Bare(), Type: stanza.ChatMessage}, Body: "hello bob"})
	if err != nil {
		t.Fatal(err)
	}

	// Bob logs in over direct TLS and gets the message from offline storage.
	b, err := login(ctx, p.DirectTLSAddr(), bj, "bobpw", pinned, true)
	if err != nil {
		t.Fatalf("direct TLS login: %v", err)
	}
	defer b.Close()
	got := make(chan bodyMsg, 1)
	go func() {
		_ = b.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			if start.Name.Local != "message" {
				return nil
			}
			var m bodyMsg
			if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), r)).Decode(&m); err == nil && m.Body != "" {
				select {
				case got <- m:
				default:
				}
			}
			return nil
		}))
	}()
	if err := b.Send(ctx, stanza.Presence{}.Wrap(nil)); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m.Body != "hello bob" || !m.From.Bare().Equal(aj.Bare()) {
			t.Fatalf("bob got %q from %s", m.Body, m.From)
		}
	case <-ctx.Done():
		t.Fatal("bob received nothing")
	}

	// Restart keeps accounts and ports.
	a.Close()
	b.Close()
	p.Restart(t)
	s, err := login(ctx, p.Addr(), aj, "alicepw", pinned, false)
	if err != nil {
		t.Fatalf("login after restart: %v", err)
	}
	s.Close()
}

func TestProsodyNoTLS(t *testing.T) {
	p := StartProsody(t, ProsodyOptions{NoTLS: true})
	p.CreateAccount(t, "carol", "carolpw")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if p.DirectTLSAddr() != "" {
		t.Fatal("DirectTLSAddr set with NoTLS")
	}
	_, err := login(ctx, p.Addr(), jid.MustParse("carol@localhost"), "carolpw", &tls.Config{ServerName: "localhost", InsecureSkipVerify: true}, false)
	if err == nil {
		t.Fatal("STARTTLS login succeeded on a server without TLS")
	}
}

func TestDendrite(t *testing.T) {
	reg := t.TempDir() + "/registration.yaml"
	err := os.WriteFile(reg, []byte(`id: testenv
url: http://127.0.0.1:1
as_token: testenv_as_token
hs_token: testenv_hs_token
sender_localpart: testbot
rate_limited: false
namespaces:
  users:
    - exclusive: true
      regex: '@test_.*:localhost'
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	d := StartDendrite(t, DendriteOptions{Registration: reg})
	var versions struct {
		Versions []string `json:"versions"`
	}
	if err := doJSON(context.Background(), http.MethodGet, d.URL()+"/_matrix/client/versions", nil, &versions); err != nil {
		t.Fatal(err)
	}
	if len(versions.Versions) == 0 {
		t.Fatal("no spec versions")
	}
	uid, tok := d.RegisterUser(t, "alice", "alicepassword")
	if uid != "@alice:localhost" || tok == "" || d.ServerName() != "localhost" {
		t.Fatalf("RegisterUser = %q, %q", uid, tok)
	}
	whoami := func(token, query string) (string, int) {
		req, _ := http.NewRequest(http.MethodGet, d.URL()+"/_matrix/client/v3/account/whoami"+query, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var w struct {
			UserID string `json:"user_id"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&w)
		return w.UserID, resp.StatusCode
	}
	if got, code := whoami(tok, ""); got != uid {
		t.Fatalf("whoami = %q (HTTP %d)", got, code)
	}
	// The appservice registration is loaded: its token works and is the bot.
	if got, code := whoami("testenv_as_token", ""); got != "@testbot:localhost" {
		t.Fatalf("appservice whoami = %q (HTTP %d)", got, code)
	}
	// Registering the same user twice fails clearly.
	if _, _, err := d.registerUser("alice", "x", false); err == nil || !strings.Contains(err.Error(), "HTTP") {
		t.Fatalf("second registration: %v", err)
	}
}

func TestPostgres(t *testing.T) {
	pg := SharedPostgres(t)
	if pg != SharedPostgres(t) {
		t.Fatal("SharedPostgres started a second cluster")
	}
	uri := pg.CreateDatabase(t, "testenv_check")
	db, err := sql.Open("postgres", uri)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var one int
	var name string
	if err := db.QueryRow("SELECT 1, current_database()").Scan(&one, &name); err != nil {
		t.Fatal(err)
	}
	if one != 1 || name != "testenv_check" {
		t.Fatalf("got %d, %q", one, name)
	}
	if _, err := pg.createDatabase("Bad-Name"); err == nil {
		t.Fatal("bad database name accepted")
	}
}

func TestFreePort(t *testing.T) {
	port := FreePort(t)
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", itoa(port)))
	if err != nil {
		t.Fatalf("FreePort %d not bindable: %v", port, err)
	}
	l.Close()
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestDendritePostgres(t *testing.T) {
	pg := SharedPostgres(t)
	d := StartDendrite(t, DendriteOptions{PostgresURI: pg.CreateDatabase(t, "dendrite_check")})
	uid, tok := d.RegisterUser(t, "pguser", "pgpassword")
	if uid != "@pguser:localhost" || tok == "" {
		t.Fatalf("RegisterUser = %q, %q", uid, tok)
	}
	db, err := sql.Open("postgres", pg.dbURI("dendrite_check"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM userapi_accounts WHERE localpart = 'pguser'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("account row in PostgreSQL: %d, %v", n, err)
	}
}

// checkUpload requests an XEP-0363 slot from upload.localhost, PUTs a file and GETs it back.
func checkUpload(ctx context.Context, t *testing.T, s *xmpp.Session, p *Prosody) {
	t.Helper()
	type header struct {
		Name  string `xml:"name,attr"`
		Value string `xml:",chardata"`
	}
	var slot struct {
		XMLName xml.Name `xml:"slot"`
		Put     struct {
			URL     string   `xml:"url,attr"`
			Headers []header `xml:"header"`
		} `xml:"put"`
		Get struct {
			URL string `xml:"url,attr"`
		} `xml:"get"`
	}
	content := "hello upload"
	req := struct {
		XMLName     xml.Name `xml:"urn:xmpp:http:upload:0 request"`
		Filename    string   `xml:"filename,attr"`
		Size        int      `xml:"size,attr"`
		ContentType string   `xml:"content-type,attr"`
	}{Filename: "hello.txt", Size: len(content), ContentType: "text/plain"}
	iq := stanza.IQ{To: jid.MustParse(p.UploadDomain()), Type: stanza.GetIQ}
	r, err := s.EncodeIQElement(ctx, req, iq)
	if err != nil {
		t.Fatalf("upload slot request: %v", err)
	}
	defer r.Close()
	d := xml.NewTokenDecoder(r)
	for {
		tok, err := d.Token()
		if err != nil {
			t.Fatalf("no slot in the answer: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "slot" {
			if err := d.DecodeElement(&slot, &se); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if !strings.HasPrefix(slot.Put.URL, p.HTTPURL()) {
		t.Fatalf("slot PUT URL %q not under %s", slot.Put.URL, p.HTTPURL())
	}
	put, _ := http.NewRequestWithContext(ctx, http.MethodPut, slot.Put.URL, strings.NewReader(content))
	put.Header.Set("Content-Type", "text/plain")
	for _, h := range slot.Put.Headers {
		put.Header.Set(h.Name, strings.TrimSpace(h.Value))
	}
	resp, err := http.DefaultClient.Do(put)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("PUT %s: HTTP %d", slot.Put.URL, resp.StatusCode)
	}
	resp, err = http.Get(slot.Get.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != content {
		t.Fatalf("GET %s: HTTP %d %q", slot.Get.URL, resp.StatusCode, b)
	}
}

//go:build integration

package itest

import (
	"context"
	"encoding/xml"
	"strconv"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/internal/testenv"
	"github.com/mxomemo/xmpp-bridge/xmpp/conn"
	"github.com/mxomemo/xmpp-bridge/xmpp/xmltok"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// account creates localpart on the shared Prosody (once) and returns its JID
// and password.
func account(t *testing.T, localpart string) (jid.JID, string) {
	t.Helper()
	p := testenv.SharedProsody(t)
	pw := localpart + "-pw"
	return jid.MustParse(p.CreateAccount(t, localpart, pw)), pw
}

// dial opens a session for the account, serves it with the options and
// sends initial presence (with extra payload, e.g. caps).
func dial(t *testing.T, j jid.JID, pw string, presence xml.TokenReader, opts ...mux.Option) *xmpp.Session {
	t.Helper()
	p := testenv.SharedProsody(t)
	s, err := conn.Dial(ctx(t), conn.Config{
		JID: j, Password: pw, Host: p.Host(), Port: uint16(p.Port()),
		InsecureTLSHosts: []string{p.Domain()}, Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatalf("failed to connect %s: %v", j, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	go func() { _ = s.Serve(mux.New(stanza.NSClient, opts...)) }()
	if err := s.Send(ctx(t), stanza.Presence{}.Wrap(presence)); err != nil {
		t.Fatalf("failed to send presence: %v", err)
	}
	return s
}

// raw returns the tokens of an XML literal without namespace declarations,
// so that mellium's encoder does not repeat them.
func raw(t *testing.T, s string) xml.TokenReader {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(s))
	tok, err := d.Token()
	if err != nil {
		t.Fatal(err)
	}
	toks, err := xmltok.Capture(d, tok.(xml.StartElement))
	if err != nil {
		t.Fatal(err)
	}
	return xmltok.Replay(toks)
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// unique returns prefix with a suffix unique in this test binary's run, so
// that tests re-run with -count against the shared server start clean.
func unique(prefix string) string {
	return prefix + strconv.FormatInt(time.Now().UnixNano(), 36)
}

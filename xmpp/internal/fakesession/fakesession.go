// Package fakesession gives tests a ready mellium client session whose peer
// answers each IQ with a canned response, so that the session-level helpers
// of the stanza packages can be tested without a server.
// Real-server tests live behind the integration build tag.
package fakesession

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"
)

// Respond returns the XML of the response to one request (the full request
// stanza as sent by the client). The response's id is filled in if it has
// id="" or none; any {{id}} in it is replaced by the request's id.
type Respond func(request string) string

// Server records what the client sent.
type Server struct {
	mu       sync.Mutex
	requests []string
}

// Requests returns the stanzas the client sent so far.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// New returns a ready client session for account and the fake peer.
func New(t *testing.T, account jid.JID, respond Respond) (*xmpp.Session, *Server) {
	t.Helper()
	client, peer := net.Pipe()
	srv := &Server{}
	go srv.serve(peer, respond)
	s, err := xmpp.NewSession(context.Background(), account.Domain(), account, client, 0,
		func(_ context.Context, in, out *stream.Info, _ *xmpp.Session, _ interface{}) (xmpp.SessionState, io.ReadWriter, interface{}, error) {
			in.XMLNS, out.XMLNS = stanza.NSClient, stanza.NSClient
			return xmpp.Ready | xmpp.Secure | xmpp.Authn, nil, nil, nil
		})
	if err != nil {
		t.Fatalf("failed to create fake session: %v", err)
	}
	go func() { _ = s.Serve(nil) }()
	t.Cleanup(func() {
		_ = client.Close()
		_ = peer.Close()
	})
	return s, srv
}

func (srv *Server) serve(conn net.Conn, respond Respond) {
	// Record the client's bytes as sent: re-encoding decoded tokens would
	// repeat every namespace declaration.
	var raw bytes.Buffer
	d := xml.NewDecoder(io.TeeReader(conn, &raw))
	for {
		off := d.InputOffset()
		tok, err := d.Token()
		if err != nil {
			return
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		id := ""
		for _, a := range start.Attr {
			if a.Name.Local == "id" {
				id = a.Value
			}
		}
		if err := d.Skip(); err != nil {
			return
		}
		req := string(raw.Bytes()[off:d.InputOffset()])
		srv.mu.Lock()
		srv.requests = append(srv.requests, req)
		srv.mu.Unlock()
		if respond == nil {
			continue
		}
		if resp := respond(req); resp != "" {
			if _, err := io.WriteString(conn, strings.ReplaceAll(resp, "{{id}}", id)); err != nil {
				return
			}
		}
	}
}

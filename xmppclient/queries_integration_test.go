//go:build integration

package xmppclient

import (
	"context"
	"encoding/xml"
	"fmt"
	"sync"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/internal/testenv"
	xconn "github.com/mxomemo/xmpp-bridge/xmpp/conn"
)

// TestCatchUpForgetsAnsweredQueries pages through a real server's archive
// (7 messages, pages of 3) with the Router reading the results: each
// result carries its query's mode and catch-up as the Router looked them
// up, and once the catch-up is over no query id is remembered (each was
// forgotten at its <fin/>, after its results). A query that fails
// is kept: its results could still come. On Prosody and ejabberd.
func TestCatchUpForgetsAnsweredQueries(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) smServer
	}{
		{"prosody", func(t *testing.T) smServer { return testenv.StartProsody(t, testenv.ProsodyOptions{}) }},
		{"ejabberd", func(t *testing.T) smServer { return testenv.StartEjabberd(t, testenv.EjabberdOptions{}) }},
	} {
		t.Run(tc.name, func(t *testing.T) { catchUpForgets(t, tc.start(t)) })
	}
}

func catchUpForgets(t *testing.T, srv smServer) {
	alice := jid.MustParse(srv.CreateAccount(t, "qalice", "pw-a"))
	bob := jid.MustParse(srv.CreateAccount(t, "qbob", "pw-b"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dial := func(j jid.JID, pw string) *xconn.Config {
		return &xconn.Config{JID: j, Password: pw, Host: srv.Host(), Port: uint16(srv.Port()), InsecureTLSHosts: []string{srv.Domain()}, Timeout: 20 * time.Second}
	}
	start := time.Now().Add(-time.Minute)
	sb, err := xconn.Dial(ctx, *dial(bob, "pw-b"))
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	const sent = 7
	for i := range sent {
		msg := stanza.Message{ID: fmt.Sprintf("q-%d", i), To: alice, Type: stanza.ChatMessage}
		if err := sb.Send(ctx, msg.Wrap(bodyElem(fmt.Sprintf("archived %d", i)))); err != nil {
			t.Fatal(err)
		}
	}

	sa, err := xconn.Dial(ctx, *dial(alice, "pw-a"))
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	var (
		mu      sync.Mutex
		results []Archived
	)
	q := &Queries{}
	r := &Router{Rooms: NewRooms(), Roster: NewRoster(), Queries: q, Queue: func(_ context.Context, in Inbound) {
		if in.Kind == KindArchived {
			mu.Lock()
			results = append(results, in.Archived)
			mu.Unlock()
		}
	}}
	go func() { _ = sa.Serve(r.Handler(ctx)) }()

	// The server archives what reached alice's account; bob's messages may
	// still be on their way.
	var ok bool
	for deadline := time.Now().Add(20 * time.Second); ; {
		mu.Lock()
		results = nil
		mu.Unlock()
		ok = CatchUp(ctx, sa, alice, "", start, CatchUpIDs{Queries: q, Seq: 7}, 3, 10, 20*time.Second)
		mu.Lock()
		n := len(results)
		mu.Unlock()
		if n >= sent || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !ok {
		t.Fatal("the catch-up did not reach the end of the archive")
	}
	mu.Lock()
	got := append([]Archived(nil), results...)
	mu.Unlock()
	if len(got) != sent {
		t.Fatalf("%d results, want %d", len(got), sent)
	}
	for _, a := range got {
		if want := (QueryInfo{Mode: QueryCatchUp, Seq: 7}); a.Query != want {
			t.Errorf("result %s of query %s looked up as %+v, want %+v", a.ArchiveID, a.QueryID, a.Query, want)
		}
	}
	if n := q.Len(); n != 0 {
		t.Errorf("%d query ids remembered after the catch-up, want 0", n)
	}

	// An archive on a server that does not exist: the query fails; its id stays.
	if CatchUp(ctx, sa, jid.MustParse("nobody@nowhere.invalid"), "", start, CatchUpIDs{Queries: q, Seq: 8}, 3, 10, 20*time.Second) {
		t.Fatal("a catch-up of an archive on no server succeeded")
	}
	if n := q.Len(); n != 1 {
		t.Errorf("%d query ids remembered after a refused query, want 1", n)
	}
}

// bodyElem is <body>text</body>.
func bodyElem(text string) xml.TokenReader {
	return xmlstream.Wrap(xmlstream.Token(xml.CharData(text)), xml.StartElement{Name: xml.Name{Local: "body"}})
}

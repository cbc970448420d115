package omemoxmpp

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
	"github.com/mxomemo/xmpp-bridge/xmpp/xmltok"
)

// fakeServer is an in-memory PEP service for many accounts.
type fakeServer struct {
	mu    sync.Mutex
	nodes map[string]map[string]*fakeNode // owner → node
	log   []publishCall
	// refuseMax makes publishes with pubsub#max_items=max fail with
	// bad-request, as on a service without config-node-max.
	refuseMax bool
	// refuseMaxItems makes publishes with any pubsub#max_items fail with
	// resource-constraint, as on ejabberd 23.01 ("Unknown field").
	refuseMaxItems bool
	// refuseNodes makes every publish to these nodes fail with forbidden.
	refuseNodes map[string]bool
}

type fakeNode struct {
	items   []pubsub.Item
	options []pubsub.Field
}

type publishCall struct {
	owner, node, id string
	options         []pubsub.Field
	payload         string
}

func newFakeServer() *fakeServer {
	return &fakeServer{nodes: map[string]map[string]*fakeNode{}}
}

// pep returns the PEP of owner (bare JID).
func (s *fakeServer) pep(owner string) *fakePEP { return &fakePEP{s: s, owner: owner} }

// put stores an item from XML, as another client would publish it.
func (s *fakeServer) put(t *testing.T, owner, node, id, payload string) {
	t.Helper()
	it, err := pubsub.NewItem(id, xml.NewDecoder(strings.NewReader(payload)))
	if err != nil {
		t.Fatalf("bad payload: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nodeOf(owner, node).set(it)
}

func (s *fakeServer) nodeOf(owner, node string) *fakeNode {
	if s.nodes[owner] == nil {
		s.nodes[owner] = map[string]*fakeNode{}
	}
	n := s.nodes[owner][node]
	if n == nil {
		n = &fakeNode{}
		s.nodes[owner][node] = n
	}
	return n
}

func (n *fakeNode) set(it pubsub.Item) {
	for i := range n.items {
		if n.items[i].ID == it.ID {
			n.items = append(n.items[:i], n.items[i+1:]...)
			break
		}
	}
	n.items = append(n.items, it)
}

// calls returns the publish calls so far.
func (s *fakeServer) calls() []publishCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]publishCall(nil), s.log...)
}

// itemXML returns the payload of owner's item as XML, "" when absent.
func (s *fakeServer) itemXML(owner, node, id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodes[owner][node]
	if n == nil {
		return ""
	}
	for _, it := range n.items {
		if it.ID == id {
			return encode(it.Payload())
		}
	}
	return ""
}

type fakePEP struct {
	s     *fakeServer
	owner string
	// fail makes Items fail for this node.
	fail map[string]error
}

func (p *fakePEP) Publish(_ context.Context, node, id string, payload xml.TokenReader, options ...pubsub.Field) error {
	var buf []xml.Token
	for {
		tok, err := payload.Token()
		if tok != nil {
			buf = append(buf, xml.CopyToken(tok))
		}
		if err != nil {
			break
		}
	}
	it, err := pubsub.NewItem(id, xmltok.Replay(buf))
	if err != nil {
		return err
	}
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	for _, o := range options {
		if p.s.refuseMax && o.Var == "pubsub#max_items" && slices.Contains(o.Values, "max") {
			return &pubsub.Error{Stanza: stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest}}
		}
		if p.s.refuseMaxItems && o.Var == "pubsub#max_items" {
			return &pubsub.Error{Stanza: stanza.Error{Type: stanza.Wait, Condition: stanza.ResourceConstraint}}
		}
	}
	if p.s.refuseNodes[node] {
		return &pubsub.Error{Stanza: stanza.Error{Type: stanza.Auth, Condition: stanza.Forbidden}}
	}
	n := p.s.nodeOf(p.owner, node)
	n.options = options
	n.set(it)
	p.s.log = append(p.s.log, publishCall{owner: p.owner, node: node, id: id, options: options, payload: encode(xmltok.Replay(buf))})
	return nil
}

func (p *fakePEP) Items(_ context.Context, owner jid.JID, node string, ids ...string) ([]pubsub.Item, error) {
	if err := p.fail[node]; err != nil {
		return nil, err
	}
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	n := p.s.nodes[owner.String()][node]
	if n == nil {
		return nil, &pubsub.Error{Stanza: stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound}}
	}
	var out []pubsub.Item
	for _, it := range n.items {
		if len(ids) == 0 {
			out = append(out, it)
			continue
		}
		for _, id := range ids {
			if it.ID == id {
				out = append(out, it)
			}
		}
	}
	return out, nil
}

// encode writes a token stream as XML text.
func encode(r xml.TokenReader) string {
	if r == nil {
		return ""
	}
	var b bytes.Buffer
	e := xml.NewEncoder(&b)
	if _, err := xmlstream.Copy(e, r); err != nil {
		return fmt.Sprintf("encode error: %v", err)
	}
	if err := e.Flush(); err != nil {
		return fmt.Sprintf("encode error: %v", err)
	}
	return b.String()
}

// device is one test device: a Manager on a memory store with a Client on
// the fake server.
type device struct {
	jid    string
	store  *omemo.MemoryStore
	m      *omemo.Manager
	c      *Client
	pep    *fakePEP
	server *fakeServer
}

func newDevice(t *testing.T, srv *fakeServer, bare string, opts Options) *device {
	t.Helper()
	ctx := context.Background()
	st := omemo.NewMemoryStore()
	m := omemo.NewManager(st, bare, omemo.Options{PreKeys: 25})
	if err := m.Setup(ctx); err != nil {
		t.Fatalf("setup: %v", err)
	}
	pep := srv.pep(bare)
	c, err := New(m, st, pep, opts)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	return &device{jid: bare, store: st, m: m, c: c, pep: pep, server: srv}
}

func (d *device) announce(t *testing.T) {
	t.Helper()
	if err := d.c.Announce(context.Background()); err != nil {
		t.Fatalf("announce %s/%d: %v", d.jid, d.m.DeviceID(), err)
	}
}

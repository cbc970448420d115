package omemoxmpp

import (
	"context"
	"encoding/xml"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
)

// stallingPEP holds the first Publish until released, as a slow server
// reply does, and reports every Publish that starts.
type stallingPEP struct {
	*fakePEP
	started chan struct{}
	release chan struct{}
	n       atomic.Int32
}

func (p *stallingPEP) Publish(ctx context.Context, node, id string, payload xml.TokenReader, options ...pubsub.Field) error {
	first := p.n.Add(1) == 1
	p.started <- struct{}{}
	if first {
		<-p.release
	}
	return p.fakePEP.Publish(ctx, node, id, payload, options...)
}

// A republish whose reply is slow and a second one after a prekey was used
// up: the bundle left on the node is the newer one, without the used
// prekey, whatever order the server answers in.
func TestBundlePublishesInOrder(t *testing.T) {
	ctx := context.Background()
	srv := newFakeServer()
	a := newDevice(t, srv, "alice@example.org", Options{Versions: []omemo.Version{omemo.V03}})
	a.announce(t)
	b := newDevice(t, srv, "bob@example.org", Options{Versions: []omemo.Version{omemo.V03}})
	b.announce(t)

	pep := &stallingPEP{fakePEP: a.pep, started: make(chan struct{}, 4), release: make(chan struct{})}
	c, err := New(a.m, a.store, pep, Options{Versions: []omemo.Version{omemo.V03}})
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() { first <- c.Republish(ctx) }()
	<-pep.started // the first bundle is built and on its way

	out, err := b.c.Encrypt(ctx, jid.MustParse("alice@example.org"), "hi")
	if err != nil {
		t.Fatalf("encrypt: %v", err)
	}
	msg, err := c.DecryptStanza(ctx, stanzaReader(t, "bob@example.org/x", out))
	if err != nil || !msg.PreKeyConsumed {
		t.Fatalf("decrypt: %v %+v", err, msg)
	}
	second := make(chan error, 1)
	go func() { second <- c.Republish(ctx) }()
	// The second publish must not overtake the first: if it starts before
	// the first is answered, answer the first after it.
	select {
	case <-pep.started:
	case <-time.After(300 * time.Millisecond):
	}
	close(pep.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}

	node := omemo.V03.BundleNode(a.m.DeviceID())
	x := srv.itemXML("alice@example.org", node, ItemCurrent)
	published, err := omemo.ParseBundle([]byte(x))
	if err != nil {
		t.Fatalf("bundle on the node: %v\n%s", err, x)
	}
	want, err := a.m.Bundle(ctx, omemo.V03)
	if err != nil {
		t.Fatal(err)
	}
	for _, pk := range published.PreKeys {
		if k, _ := a.store.PreKey(ctx, pk.ID); k == nil {
			t.Errorf("the bundle left on the node offers prekey %d, which we no longer have", pk.ID)
		}
	}
	if len(published.PreKeys) != len(want.PreKeys) {
		t.Errorf("the bundle on the node has %d prekeys, ours %d", len(published.PreKeys), len(want.PreKeys))
	}
}

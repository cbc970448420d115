package xmppclient

import (
	"context"
	"encoding/xml"
	"errors"
	"slices"
	"sync"
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
)

// pepMem is an in-memory PEP service shared by a test's accounts.
type pepMem struct {
	mu    sync.Mutex
	items map[string][]pubsub.Item // owner + "\x00" + node
}

type pepAs struct {
	srv   *pepMem
	owner string
}

func (p pepAs) Publish(_ context.Context, node, id string, payload xml.TokenReader, _ ...pubsub.Field) error {
	it, err := pubsub.NewItem(id, payload)
	if err != nil {
		return err
	}
	p.srv.mu.Lock()
	defer p.srv.mu.Unlock()
	key := p.owner + "\x00" + node
	items := p.srv.items[key]
	for i := range items {
		if items[i].ID == id {
			items = append(items[:i], items[i+1:]...)
			break
		}
	}
	p.srv.items[key] = append(items, it)
	return nil
}

func (p pepAs) Items(_ context.Context, owner jid.JID, node string, ids ...string) ([]pubsub.Item, error) {
	p.srv.mu.Lock()
	defer p.srv.mu.Unlock()
	items, ok := p.srv.items[owner.Bare().String()+"\x00"+node]
	if !ok {
		return nil, &pubsub.Error{Stanza: stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound}}
	}
	var out []pubsub.Item
	for _, it := range items {
		if len(ids) == 0 || it.ID == ids[0] {
			out = append(out, it)
		}
	}
	return out, nil
}

// omemoPair is alice's OMEMO (the login's) and bob's first message to her,
// a key exchange on one of her one-time prekeys.
func omemoPair(t *testing.T, use bool) (*OMEMO, DecryptRequest) {
	t.Helper()
	ctx := context.Background()
	srv := &pepMem{items: map[string][]pubsub.Item{}}
	alice, bob := jid.MustParse("alice@example.org"), jid.MustParse("bob@example.org")
	o := &OMEMO{}
	as := omemo.NewMemoryStore()
	m, err := o.Open(ctx, as, alice, omemo.PolicyBTBV)
	if err != nil {
		t.Fatal(err)
	}
	oc, err := omemoxmpp.New(m, as, pepAs{srv, alice.String()}, omemoxmpp.Options{Versions: []omemo.Version{omemo.V2}})
	if err != nil {
		t.Fatal(err)
	}
	if err := oc.Announce(ctx); err != nil {
		t.Fatal(err)
	}
	if use {
		o.Use(oc)
	}
	bs := omemo.NewMemoryStore()
	bm := omemo.NewManager(bs, bob.String(), omemo.Options{PreKeys: 5})
	if err := bm.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	bc, err := omemoxmpp.New(bm, bs, pepAs{srv, bob.String()}, omemoxmpp.Options{Versions: []omemo.Version{omemo.V2}})
	if err != nil {
		t.Fatal(err)
	}
	if err := bc.Announce(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := bc.Encrypt(ctx, alice, "hello alice")
	if err != nil {
		t.Fatal(err)
	}
	return o, DecryptRequest{Received: &omemoxmpp.Received{From: bob, Elements: out.Elements}, Sender: bob, Peer: bob}
}

// TestOMEMODecrypt: the client hands back a typed result and queues the
// follow-ups itself, only when the caller's record of the step committed.
func TestOMEMODecrypt(t *testing.T) {
	errRecord := errors.New("record failed")
	for _, tc := range []struct {
		name        string
		use         bool
		callStep    bool
		recordErr   error
		wantOutcome DecryptOutcome
		wantBody    string
		wantTasks   []OMEMOTaskKind
	}{
		{name: "not set up", wantOutcome: DecryptUnavailable},
		{name: "decrypted", use: true, callStep: true, wantOutcome: DecryptRecorded, wantBody: "hello alice",
			wantTasks: []OMEMOTaskKind{TaskRepublish, TaskHeartbeat}},
		{name: "record failed", use: true, callStep: true, recordErr: errRecord, wantOutcome: DecryptRecorded},
		{name: "answered from the caller's record", use: true, wantOutcome: DecryptRecorded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, req := omemoPair(t, tc.use)
			d, err := o.Decrypt(context.Background(), req, func(ctx context.Context, step DecryptStep) error {
				if tc.callStep {
					step(ctx)
				}
				return tc.recordErr
			})
			if !errors.Is(err, tc.recordErr) {
				t.Fatalf("error %v, want %v", err, tc.recordErr)
			}
			if d.Outcome != tc.wantOutcome || d.Stepped != tc.callStep {
				t.Fatalf("outcome %v stepped %v, want %v %v", d.Outcome, d.Stepped, tc.wantOutcome, tc.callStep)
			}
			if tc.wantBody != "" && (d.Message == nil || d.Message.Body != tc.wantBody || d.Err != nil) {
				t.Fatalf("decrypted %+v, %v; want %q", d.Message, d.Err, tc.wantBody)
			}
			var got []OMEMOTaskKind
			for _, task := range o.Queue().Pending() {
				if task.Kind != TaskFetchDevices {
					got = append(got, task.Kind)
				}
			}
			if !slices.Equal(got, tc.wantTasks) {
				t.Errorf("queued %v, want %v", got, tc.wantTasks)
			}
		})
	}
}

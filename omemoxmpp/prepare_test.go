package omemoxmpp

import (
	"context"
	"encoding/xml"
	"errors"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
)

// silentPEP is a PEP whose requests to some owners are never answered (a
// contact's server that accepts the IQ and stays silent): they wait until
// the caller's context ends. It counts the requests per owner.
type silentPEP struct {
	PEP
	silent map[string]bool
	mu     sync.Mutex
	calls  map[string]int
}

func (p *silentPEP) Items(ctx context.Context, owner jid.JID, node string, ids ...string) ([]pubsub.Item, error) {
	p.mu.Lock()
	if p.calls == nil {
		p.calls = map[string]int{}
	}
	p.calls[owner.String()]++
	p.mu.Unlock()
	if p.silent[owner.String()] {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return p.PEP.Items(ctx, owner, node, ids...)
}

func (p *silentPEP) count(owner string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[owner]
}

func (p *silentPEP) Publish(ctx context.Context, node, id string, payload xml.TokenReader, options ...pubsub.Field) error {
	return p.PEP.Publish(ctx, node, id, payload, options...)
}

// TestPrepareSilentServer: a group member whose server never answers costs
// one send at most the fetch budget, and later sends nothing (negative
// cache); the other member still gets the message.
func TestPrepareSilentServer(t *testing.T) {
	ctx := context.Background()
	srv := newFakeServer()
	bob := newDevice(t, srv, "bob@example.org", Options{})
	bob.announce(t)
	st := omemo.NewMemoryStore()
	m := omemo.NewManager(st, "alice@example.org", omemo.Options{PreKeys: 25})
	if err := m.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	pep := &silentPEP{PEP: srv.pep("alice@example.org"), silent: map[string]bool{"carol@silent.example": true}}
	alice, err := New(m, st, pep, Options{FetchBudget: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Carol's list came in a notification; her bundle must be fetched.
	carol := "carol@silent.example"
	if err := st.PutDeviceList(ctx, omemo.V2, carol, []omemo.Device{{ID: 4242}}); err != nil {
		t.Fatal(err)
	}
	room := jid.MustParse("room@muc.example.org")
	members := []jid.JID{jid.MustParse("bob@example.org"), jid.MustParse(carol)}

	for round := 1; round <= 2; round++ {
		start := time.Now()
		out, err := alice.EncryptGroup(ctx, room, members, "hi")
		took := time.Since(start)
		if err != nil {
			t.Fatalf("round %d: encrypt: %v", round, err)
		}
		if took > 5*time.Second {
			t.Errorf("round %d: encrypting took %v with a silent member server", round, took)
		}
		carolErr := out.Errors[omemo.Address{JID: carol, Device: 4242}]
		if carolErr == nil {
			t.Fatalf("round %d: carol's silent device not in Errors: %v", round, out.Errors)
		}
		if round == 2 && !errors.Is(carolErr, ErrRecentlyFailed) {
			t.Errorf("round 2: carol's error = %v, want ErrRecentlyFailed", carolErr)
		}
		reached := false
		for _, a := range out.Recipients[omemo.V2] {
			reached = reached || a.JID == "bob@example.org"
		}
		if !reached {
			t.Errorf("round %d: bob not reached: %v", round, out.Recipients)
		}
		t.Logf("round %d: %v", round, took)
	}
	if n := pep.count(carol); n != 1 {
		t.Errorf("carol's server asked %d times, want once (negative cache)", n)
	}
}

// TestPrepareBoundsFetches: a contact listing many devices costs at most
// MaxBundleFetches bundle requests per message.
func TestPrepareBoundsFetches(t *testing.T) {
	ctx := context.Background()
	srv := newFakeServer()
	bob := newDevice(t, srv, "bob@example.org", Options{})
	bob.announce(t)
	st := omemo.NewMemoryStore()
	m := omemo.NewManager(st, "alice@example.org", omemo.Options{PreKeys: 25})
	if err := m.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	pep := &silentPEP{PEP: srv.pep("alice@example.org")}
	alice, err := New(m, st, pep, Options{})
	if err != nil {
		t.Fatal(err)
	}
	devs := []omemo.Device{{ID: bob.m.DeviceID()}}
	for i := uint32(1); i <= 1000; i++ {
		devs = append(devs, omemo.Device{ID: 100000 + i})
	}
	if err := st.PutDeviceList(ctx, omemo.V2, "bob@example.org", devs); err != nil {
		t.Fatal(err)
	}
	out, err := alice.Encrypt(ctx, jid.MustParse("bob@example.org"), "hi")
	if err != nil && !errors.Is(err, ErrNoTrustedDevices) {
		t.Fatalf("encrypt: %v", err)
	}
	if n := pep.count("bob@example.org"); n > MaxBundleFetches {
		t.Errorf("%d bundle requests for one message, want at most %d", n, MaxBundleFetches)
	}
	if out != nil {
		tooMany := 0
		for _, e := range out.Errors {
			if errors.Is(e, ErrTooManyDevices) {
				tooMany++
			}
		}
		if tooMany == 0 {
			t.Errorf("no device skipped with ErrTooManyDevices")
		}
	}
}

// TestFetchDevicesForgetsNewDevices: a failed bundle fetch is remembered,
// but a fetched device list that names a device the stored list did not
// (a list we could not read before, or a device announced since) lets its
// bundle be asked for again; a device already known keeps its entry.
func TestFetchDevicesForgetsNewDevices(t *testing.T) {
	ctx := context.Background()
	srv := newFakeServer()
	alice := newDevice(t, srv, "alice@example.org", Options{})
	carol := newDevice(t, srv, "carol@example.org", Options{})
	carolJID := jid.MustParse(carol.jid)
	id := carol.m.DeviceID()

	if _, err := alice.c.FetchBundle(ctx, carolJID, id, omemo.V2); err == nil {
		t.Fatal("fetched a bundle that is not published")
	}
	if _, err := alice.c.FetchBundle(ctx, carolJID, id, omemo.V2); !errors.Is(err, ErrRecentlyFailed) {
		t.Fatalf("second fetch: %v, want ErrRecentlyFailed", err)
	}
	carol.announce(t)
	if _, err := alice.c.FetchDevices(ctx, carolJID); err != nil {
		t.Fatalf("fetch devices: %v", err)
	}
	if _, err := alice.c.FetchBundle(ctx, carolJID, id, omemo.V2); err != nil {
		t.Fatalf("bundle of a newly listed device: %v", err)
	}

	// A known device whose bundle disappears stays in the negative cache
	// across a refetch of an unchanged list.
	srv.nodeOf(carol.jid, omemo.V03.BundleNode(id)).items = nil
	if _, err := alice.c.FetchBundle(ctx, carolJID, id, omemo.V03); err == nil {
		t.Fatal("fetched a removed bundle")
	}
	if _, err := alice.c.FetchDevices(ctx, carolJID); err != nil {
		t.Fatalf("fetch devices again: %v", err)
	}
	if _, err := alice.c.FetchBundle(ctx, carolJID, id, omemo.V03); !errors.Is(err, ErrRecentlyFailed) {
		t.Fatalf("known device after an unchanged list: %v, want ErrRecentlyFailed", err)
	}
}

// TestPrepareSessionChanges: EncryptPrepared does not ask for the session
// Prepare looked up; a session gone since then fails that device with
// ErrNoBundle (and omemo.ErrNoSession), one created since then is used
// rather than the bundle Prepare fetched.
func TestPrepareSessionChanges(t *testing.T) {
	ctx := context.Background()
	bobJID := jid.MustParse("bob@example.org")
	for _, tc := range []struct {
		name string
		// before: alice has a session with bob before Prepare.
		before bool
		// between runs after Prepare, before EncryptPrepared.
		between func(t *testing.T, a, b *device) []*Outgoing
	}{
		{"session gone", true, func(t *testing.T, a, b *device) []*Outgoing {
			addr := omemo.Address{JID: "bob@example.org", Device: b.m.DeviceID()}
			if err := a.m.DeleteSession(ctx, omemo.V2, addr); err != nil {
				t.Fatal(err)
			}
			return nil
		}},
		{"session since", false, func(t *testing.T, a, b *device) []*Outgoing {
			out, err := a.c.Encrypt(ctx, bobJID, "first")
			if err != nil {
				t.Fatal(err)
			}
			return []*Outgoing{out}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer()
			a := newDevice(t, srv, "alice@example.org", Options{Versions: []omemo.Version{omemo.V2}})
			b := newDevice(t, srv, "bob@example.org", Options{Versions: []omemo.Version{omemo.V2}})
			a.announce(t)
			b.announce(t)
			var sent []*Outgoing
			if tc.before {
				out, err := a.c.Encrypt(ctx, bobJID, "first")
				if err != nil {
					t.Fatal(err)
				}
				sent = append(sent, out)
			}
			p := a.c.Prepare(ctx, bobJID)
			sent = append(sent, tc.between(t, a, b)...)
			out, err := a.c.EncryptPrepared(ctx, p, "second")
			if tc.before {
				var de *DeviceError
				if !errors.As(err, &de) {
					t.Fatalf("EncryptPrepared = %v, want a DeviceError", err)
				}
				e := de.Devices[omemo.Address{JID: "bob@example.org", Device: b.m.DeviceID()}]
				if !errors.Is(e, ErrNoBundle) || !errors.Is(e, omemo.ErrNoSession) {
					t.Fatalf("bob's device error = %v, want ErrNoBundle and omemo.ErrNoSession", e)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sent = append(sent, out)
			// Both messages on one session: bob consumes one prekey and
			// decrypts both in order.
			want := []string{"first", "second"}
			for i, o := range sent {
				m, err := b.c.DecryptStanza(ctx, stanzaReader(t, "alice@example.org/r", o))
				if err != nil || m.Body != want[i] {
					t.Fatalf("bob, message %d: %+v, %v", i, m, err)
				}
				if m.PreKeyConsumed != (i == 0) {
					t.Errorf("bob, message %d: prekey consumed %v", i, m.PreKeyConsumed)
				}
			}
		})
	}
}

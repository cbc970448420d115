//go:build integration

package omemoxmpp

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	mcarbons "mellium.im/xmpp/carbons"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/internal/testenv"
	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/xmpp/caps"
	"github.com/mxomemo/xmpp-bridge/xmpp/carbons"
	"github.com/mxomemo/xmpp-bridge/xmpp/conn"
	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
	"github.com/mxomemo/xmpp-bridge/xmpp/xmltok"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const capsNode = "https://github.com/mxomemo/xmpp-bridge"

func testCtx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// unique returns prefix with a suffix unique in this run, so that tests
// re-run with -count against the shared server start clean.
func unique(prefix string) string {
	return prefix + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// peer is one XMPP client with our OMEMO engine on a real session.
type peer struct {
	name    string
	bare    jid.JID
	s       *xmpp.Session
	store   *omemo.MemoryStore
	m       *omemo.Manager
	c       *Client
	info    caps.Info
	msgs    chan []xml.Token // chat messages carrying <encrypted/>
	events  chan []xml.Token // PEP notifications
	carbons chan carbons.Carbon

	mu   sync.Mutex
	seen map[string]bool
}

// dialPeer connects the account, sets up a fresh OMEMO device on it and
// serves the session; it sends no presence yet.
func dialPeer(t *testing.T, name string, account jid.JID, pw string, opts Options) *peer {
	t.Helper()
	p := testenv.SharedProsody(t)
	s, err := dialSession(t, p, account, pw)
	if err != nil {
		t.Fatalf("%s: failed to connect: %v", name, err)
	}
	pr := &peer{
		name: name, bare: account.Bare(), s: s, store: omemo.NewMemoryStore(),
		msgs: make(chan []xml.Token, 20), events: make(chan []xml.Token, 50), carbons: make(chan carbons.Carbon, 20),
		seen: map[string]bool{},
		info: caps.Info{
			Identities: []caps.Identity{{Category: "client", Type: "bot", Name: "omemoxmpp test"}},
			Features:   append([]string{caps.NS, caps.NSInfo}, NotifyFeatures...),
		},
	}
	pr.m = omemo.NewManager(pr.store, pr.bare.String(), omemo.Options{PreKeys: 30})
	if err := pr.m.Setup(testCtx(t)); err != nil {
		t.Fatalf("%s: setup: %v", name, err)
	}
	if pr.c, err = NewSession(pr.m, pr.store, s, opts); err != nil {
		t.Fatalf("%s: client: %v", name, err)
	}
	collect := func(ch chan []xml.Token, dedupe bool) mux.MessageHandlerFunc {
		return func(msg stanza.Message, r xmlstream.TokenReadEncoder) error {
			toks, err := readStanza(r)
			if err != nil {
				t.Errorf("%s: bad stanza: %v", name, err)
				return nil
			}
			if dedupe && msg.ID != "" {
				// A message with both <encrypted/> elements reaches the
				// handler once per element.
				pr.mu.Lock()
				dup := pr.seen[msg.ID]
				pr.seen[msg.ID] = true
				pr.mu.Unlock()
				if dup {
					return nil
				}
			}
			ch <- toks
			return nil
		}
	}
	opt := []mux.Option{caps.Handle(capsNode, pr.info)}
	for _, v := range []omemo.Version{omemo.V2, omemo.V03} {
		opt = append(opt, mux.Message(stanza.ChatMessage, xml.Name{Space: v.Namespace(), Local: "encrypted"}, collect(pr.msgs, true)))
	}
	for _, typ := range []stanza.MessageType{stanza.HeadlineMessage, stanza.NormalMessage} {
		opt = append(opt, mux.Message(typ, xml.Name{Space: pubsub.NSEvent, Local: "event"}, collect(pr.events, false)))
	}
	opt = append(opt, carbons.Handle(pr.bare, func(c carbons.Carbon) error {
		pr.carbons <- c
		return nil
	}, func(_ stanza.Message, err error) { t.Errorf("%s: dropped carbon: %v", name, err) }))
	go func() { _ = s.Serve(mux.New(stanza.NSClient, opt...)) }()
	return pr
}

// presence sends available presence with caps (+notify for device lists).
func (p *peer) presence(t *testing.T) {
	t.Helper()
	c, err := p.info.Caps(capsNode)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.s.Send(testCtx(t), stanza.Presence{}.Wrap(c.TokenReader())); err != nil {
		t.Fatalf("%s: presence: %v", p.name, err)
	}
}

func (p *peer) sendPresence(t *testing.T, to jid.JID, typ stanza.PresenceType) {
	t.Helper()
	if err := p.s.Send(testCtx(t), stanza.Presence{To: to, Type: typ}.Wrap(nil)); err != nil {
		t.Fatalf("%s: presence %s: %v", p.name, typ, err)
	}
}

// befriend makes a and b subscribe to each other's presence, so that PEP
// notifications flow between the accounts.
func befriend(t *testing.T, a, b *peer) {
	t.Helper()
	a.sendPresence(t, b.bare, stanza.SubscribePresence)
	time.Sleep(200 * time.Millisecond)
	b.sendPresence(t, a.bare, stanza.SubscribedPresence)
	b.sendPresence(t, a.bare, stanza.SubscribePresence)
	time.Sleep(200 * time.Millisecond)
	a.sendPresence(t, b.bare, stanza.SubscribedPresence)
	time.Sleep(300 * time.Millisecond)
}

// send builds and sends out to to.
func (p *peer) send(t *testing.T, to jid.JID, out *Outgoing) {
	t.Helper()
	r, err := BuildMessage(stanza.Message{To: to, ID: unique("m")}, out)
	if err != nil {
		t.Fatalf("%s: build: %v", p.name, err)
	}
	if err := p.s.Send(testCtx(t), r); err != nil {
		t.Fatalf("%s: send: %v", p.name, err)
	}
}

// receive waits for the next encrypted chat message and decrypts it.
func (p *peer) receive(t *testing.T) *Message {
	t.Helper()
	select {
	case toks := <-p.msgs:
		return p.decrypt(t, xmltok.Replay(toks))
	case <-time.After(15 * time.Second):
		t.Fatalf("%s: timed out waiting for a message", p.name)
	}
	return nil
}

// decrypt decrypts a message stanza and republishes our bundle when a
// prekey was used, as the bridge must.
func (p *peer) decrypt(t *testing.T, r xml.TokenReader) *Message {
	t.Helper()
	msg, err := p.c.DecryptStanza(testCtx(t), r)
	if err != nil {
		t.Fatalf("%s: decrypt: %v", p.name, err)
	}
	if msg.PreKeyConsumed {
		if err := p.c.Republish(testCtx(t)); err != nil {
			t.Fatalf("%s: republish: %v", p.name, err)
		}
	}
	return msg
}

// waitDevices handles PEP notifications until owner's stored lists satisfy
// ok; it returns the notifications' updates that were about owner.
func (p *peer) waitDevices(t *testing.T, owner jid.JID, ok func(DeviceSet) bool) []*DeviceListUpdate {
	t.Helper()
	var seen []*DeviceListUpdate
	deadline := time.After(15 * time.Second)
	for {
		set := DeviceSet{}
		for _, v := range []omemo.Version{omemo.V2, omemo.V03} {
			l, _ := p.store.DeviceList(testCtx(t), v, owner.String())
			set.add(v, l)
		}
		if ok(set) {
			return seen
		}
		select {
		case toks := <-p.events:
			upd, err := p.c.HandleDeviceListEvent(testCtx(t), xmltok.Replay(toks))
			if err != nil {
				t.Logf("%s: event: %v", p.name, err)
				continue
			}
			if upd.JID.Equal(owner) {
				seen = append(seen, upd)
			}
		case <-deadline:
			t.Fatalf("%s: timed out waiting for the device lists of %s (have %v)", p.name, owner, set)
		}
	}
}

func hasAll(ids map[uint32][]omemo.Version) func(DeviceSet) bool {
	return func(s DeviceSet) bool {
		for id, vs := range ids {
			for _, v := range vs {
				if !s.Speaks(id, v) {
					return false
				}
			}
		}
		return true
	}
}

// TestProsodyAnnounceAndExchange runs our engine on four real sessions
// against Prosody: alice's bridge device (a1) and her second device (a2,
// carbons on), bob on both versions (b1) and bob on 0.3 only (b2).
func TestProsodyAnnounceAndExchange(t *testing.T) {
	prosody := testenv.SharedProsody(t)
	alice := jid.MustParse(prosody.CreateAccount(t, unique("alice"), "alicepw"))
	bob := jid.MustParse(prosody.CreateAccount(t, unique("bob"), "bobpw"))
	ctx := testCtx(t)

	a1 := dialPeer(t, "a1", alice, "alicepw", Options{Label: "Matrix bridge"})
	a2 := dialPeer(t, "a2", alice, "alicepw", Options{})
	b1 := dialPeer(t, "b1", bob, "bobpw", Options{})
	b2 := dialPeer(t, "b2", bob, "bobpw", Options{Versions: []omemo.Version{omemo.V03}})
	if err := mcarbons.Enable(ctx, a2.s); err != nil {
		t.Fatalf("enable carbons: %v", err)
	}
	befriend(t, a1, b1)
	for _, p := range []*peer{a2, b1, b2} {
		if err := p.c.Announce(ctx); err != nil {
			t.Fatalf("%s: announce: %v", p.name, err)
		}
	}
	for _, p := range []*peer{a1, a2, b1, b2} {
		p.presence(t)
	}
	time.Sleep(500 * time.Millisecond) // Prosody asks our caps before it notifies
	if err := a1.c.Announce(ctx); err != nil {
		t.Fatalf("a1: announce: %v", err)
	}
	id := func(p *peer) uint32 { return p.m.DeviceID() }
	both := []omemo.Version{omemo.V2, omemo.V03}

	t.Run("notify events", func(t *testing.T) {
		// bob's devices learn a1 through +notify, not by fetching.
		for _, p := range []*peer{b1, b2} {
			upds := p.waitDevices(t, alice, hasAll(map[uint32][]omemo.Version{id(a1): p.c.versions, id(a2): p.c.versions}))
			if len(upds) == 0 {
				t.Errorf("%s: alice's lists were known without a notification", p.name)
			}
		}
		// alice's other device learns a1 from her own account's PEP.
		a2.waitDevices(t, alice, hasAll(map[uint32][]omemo.Version{id(a1): both}))
		// and a1 learns bob's devices (last items sent on presence).
		a1.waitDevices(t, bob, hasAll(map[uint32][]omemo.Version{id(b1): both, id(b2): {omemo.V03}}))
	})

	t.Run("items fetch", func(t *testing.T) {
		set, err := b1.c.FetchDevices(ctx, alice)
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		if !hasAll(map[uint32][]omemo.Version{id(a1): both, id(a2): both})(set) {
			t.Fatalf("alice's devices as bob sees them: %v", set)
		}
		for _, v := range both {
			bd, err := b1.c.FetchBundle(ctx, alice, id(a1), v)
			if err != nil {
				t.Fatalf("fetch %s bundle: %v", v, err)
			}
			if string(bd.IdentityKey) != string(a1.m.IdentityKey(v)) || len(bd.PreKeys) != 30 {
				t.Errorf("%s bundle is not a1's (%d prekeys)", v, len(bd.PreKeys))
			}
		}
		// The nodes are world-readable.
		for _, node := range []string{omemo.V2.DeviceListNode(), omemo.V03.DeviceListNode(), omemo.V2.BundleNode(0), omemo.V03.BundleNode(id(a1))} {
			cfg, err := pubsub.Config(ctx, a1.s, jid.JID{}, node)
			if err != nil {
				t.Fatalf("config of %s: %v", node, err)
			}
			if v, _ := cfg.Get("pubsub#access_model"); v != pubsub.AccessOpen {
				t.Errorf("%s access model %q", node, v)
			}
		}
		// The 0.3-only device published no OMEMO 2 bundle (item missing in
		// an existing node), and there is no node for an unknown device.
		if _, err := a1.c.FetchBundle(ctx, bob, id(b2), omemo.V2); !errors.Is(err, ErrNoBundle) {
			t.Errorf("OMEMO 2 bundle of a 0.3-only device: err = %v, want ErrNoBundle", err)
		}
		if _, err := a1.c.FetchBundle(ctx, bob, 4242, omemo.V03); !errors.Is(err, ErrNoBundle) {
			t.Errorf("bundle of an unknown device: err = %v, want ErrNoBundle", err)
		}
		// An account without OMEMO has no device lists (item-not-found).
		plain := jid.MustParse(prosody.CreateAccount(t, unique("plain"), "plainpw"))
		if set, err := a1.c.FetchDevices(ctx, plain); err != nil || len(set) != 0 {
			t.Errorf("account without OMEMO: %v, %v", set, err)
		}
		if _, err := a1.c.Encrypt(ctx, plain, "x"); !errors.Is(err, ErrNoDevices) {
			t.Errorf("encrypt for an account without OMEMO: err = %v, want ErrNoDevices", err)
		}
	})

	t.Run("bridge to bob and own device", func(t *testing.T) {
		out, err := a1.c.Encrypt(ctx, bob, "hello from the bridge")
		if err != nil {
			t.Fatalf("encrypt: %v", err)
		}
		if len(out.Errors) != 0 {
			t.Errorf("device errors: %v", out.Errors)
		}
		want := map[omemo.Version]map[omemo.Address]bool{
			omemo.V2:  {{JID: bob.String(), Device: id(b1)}: true, {JID: alice.String(), Device: id(a2)}: true},
			omemo.V03: {{JID: bob.String(), Device: id(b2)}: true},
		}
		for v, addrs := range want {
			if len(out.Recipients[v]) != len(addrs) {
				t.Errorf("%s recipients %v, want %v", v, out.Recipients[v], addrs)
			}
			for _, a := range out.Recipients[v] {
				if !addrs[a] {
					t.Errorf("unexpected %s recipient %v", v, a)
				}
			}
		}
		a1.send(t, bob, out)

		m := b1.receive(t)
		if m.Body != "hello from the bridge" || m.Version != omemo.V2 || !m.PreKeyConsumed || m.Sender.Device != id(a1) {
			t.Errorf("b1 got %+v", m)
		}
		if !m.SendHeartbeat {
			t.Error("b1: no heartbeat asked after a key exchange")
		} else {
			hb, err := b1.c.EncryptEmpty(ctx, alice, m.Sender.Device, m.Version)
			if err != nil {
				t.Fatalf("heartbeat: %v", err)
			}
			b1.send(t, a1.s.LocalAddr(), hb)
			got := a1.receive(t)
			if !got.Empty || got.Body != "" || got.Sender.Device != id(b1) {
				t.Errorf("a1 heartbeat: %+v", got)
			}
		}

		m = b2.receive(t)
		if m.Body != "hello from the bridge" || m.Version != omemo.V03 || !m.PreKeyConsumed {
			t.Errorf("b2 got %+v", m)
		}

		select {
		case c := <-a2.carbons:
			if !c.Sent {
				t.Fatalf("a2: received carbon instead of sent")
			}
			m := a2.decrypt(t, c.Inner())
			if m.Body != "hello from the bridge" || m.Version != omemo.V2 || m.Sender.JID != alice.String() {
				t.Errorf("a2 got %+v", m)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("a2: no carbon")
		}
	})

	t.Run("bob to alice", func(t *testing.T) {
		for _, tc := range []struct {
			from *peer
			v    omemo.Version
			body string
		}{
			{b1, omemo.V2, "reply over OMEMO 2"},
			{b2, omemo.V03, "reply over OMEMO 0.3"},
		} {
			out, err := tc.from.c.Encrypt(ctx, alice, tc.body)
			if err != nil {
				t.Fatalf("%s: encrypt: %v", tc.from.name, err)
			}
			tc.from.send(t, alice, out)
			for _, p := range []*peer{a1, a2} {
				m := p.receive(t)
				if m.Body != tc.body || m.Version != tc.v || m.Sender.JID != bob.String() || m.Sender.Device != id(tc.from) || !m.Trusted {
					t.Errorf("%s got %+v, want %q over %s", p.name, m, tc.body, tc.v)
				}
			}
		}
	})
}

func dialSession(t *testing.T, p *testenv.Prosody, account jid.JID, pw string) (*xmpp.Session, error) {
	t.Helper()
	s, err := conn.Dial(testCtx(t), conn.Config{
		JID: account, Password: pw, Host: p.Host(), Port: uint16(p.Port()),
		InsecureTLSHosts: []string{p.Domain()}, Timeout: 10 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, nil
}

// TestProsodyAnnounceReconfigures announces our device on an account whose
// OMEMO nodes another client created readable by contacts only (device
// lists: presence for 0.3, whitelist for OMEMO 2; the OMEMO 2 bundles node:
// whitelist and Prosody's default of one item), with that client's device
// in the lists and its bundle published. Prosody refuses our publish-options
// with precondition-not-met; Announce must reconfigure the nodes to open
// access and keep the other device, so that a stranger reads both devices
// and both bundles.
func TestProsodyAnnounceReconfigures(t *testing.T) {
	prosody := testenv.SharedProsody(t)
	carol := jid.MustParse(prosody.CreateAccount(t, unique("carol"), "carolpw"))
	dave := jid.MustParse(prosody.CreateAccount(t, unique("dave"), "davepw"))
	ctx := testCtx(t)
	both := []omemo.Version{omemo.V2, omemo.V03}

	// carol's phone: a device of another client, with real keys.
	phone := omemo.NewManager(omemo.NewMemoryStore(), carol.String(), omemo.Options{PreKeys: 5})
	if err := phone.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	foreign := phone.DeviceID()
	phoneBundle, err := phone.Bundle(ctx, omemo.V2)
	if err != nil {
		t.Fatal(err)
	}

	// The phone's client creates the nodes, in raw IQs on its own session.
	s, err := dialSession(t, prosody, carol, "carolpw")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(nil) }()
	fid := strconv.FormatUint(uint64(foreign), 10)
	seeds := []struct {
		node, item, payload, access string
		options                     string // our publish-options beyond the access model
	}{
		{omemo.V03.DeviceListNode(), ItemCurrent, `<list xmlns="eu.siacs.conversations.axolotl"><device id="` + fid + `"/></list>`, pubsub.AccessPresence, ""},
		{omemo.V2.DeviceListNode(), ItemCurrent, `<devices xmlns="urn:xmpp:omemo:2"><device id="` + fid + `" label="Carol's phone"/></devices>`, pubsub.AccessWhitelist, ""},
		{omemo.V2.BundleNode(foreign), fid, xmlText(t, phoneBundle), pubsub.AccessWhitelist,
			`<field var="pubsub#max_items"><value>max</value></field>`},
	}
	publish := func(node, item, payload, fields string) string {
		return `<iq type="set"><pubsub xmlns="http://jabber.org/protocol/pubsub"><publish node="` + node + `"><item id="` + item + `">` + payload +
			`</item></publish><publish-options><x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE" type="hidden"><value>` +
			pubsub.NSPublishOptions + `</value></field>` + fields + `</x></publish-options></pubsub></iq>`
	}
	accessField := func(model string) string {
		return `<field var="pubsub#access_model"><value>` + model + `</value></field>`
	}
	for _, sd := range seeds {
		if resp := rawIQ(t, s, publish(sd.node, sd.item, sd.payload, accessField(sd.access))); !strings.Contains(resp, `type="result"`) {
			t.Fatalf("seeding %s: %s", sd.node, resp)
		}
		cfg, err := pubsub.Config(ctx, s, jid.JID{}, sd.node)
		if err != nil {
			t.Fatalf("config of seeded %s: %v", sd.node, err)
		}
		if v, _ := cfg.Get("pubsub#access_model"); v != sd.access {
			t.Fatalf("seeded %s has access model %q, want %q", sd.node, v, sd.access)
		}
		// What our publish-options get on such a node (the same payload, so
		// nothing changes should the server accept it).
		resp := rawIQ(t, s, publish(sd.node, sd.item, sd.payload, accessField(pubsub.AccessOpen)+sd.options))
		t.Logf("%s (%s): publish with access_model=open: %s", sd.node, sd.access, resp)
		if !strings.Contains(resp, `type="error"`) || !strings.Contains(resp, "precondition-not-met") {
			t.Fatalf("%s: publish-options not refused; Announce would not need to reconfigure: %s", sd.node, resp)
		}
	}

	// A stranger (no presence subscription) sees nothing yet.
	d := dialPeer(t, "dave", dave, "davepw", Options{})
	for _, sd := range seeds {
		resp := rawIQ(t, d.s, `<iq type="get" to="`+carol.String()+`"><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="`+sd.node+`"/></pubsub></iq>`)
		t.Logf("%s (%s): items as a stranger: %s", sd.node, sd.access, resp)
		if !strings.Contains(resp, `type="error"`) {
			t.Fatalf("stranger reads the restricted %s: %s", sd.node, resp)
		}
	}
	if set, err := d.c.FetchDevices(ctx, carol); err != nil || len(set) != 0 {
		t.Fatalf("stranger reads the restricted lists: %v, %v", set, err)
	}
	if _, err := d.c.FetchBundle(ctx, carol, foreign, omemo.V2); !errors.Is(err, ErrNoBundle) {
		t.Fatalf("stranger reads the restricted bundle: %v", err)
	}

	c1 := dialPeer(t, "c1", carol, "carolpw", Options{Label: "Matrix bridge"})
	if err := c1.c.Announce(ctx); err != nil {
		t.Fatalf("announce: %v", err)
	}
	ours := c1.m.DeviceID()

	// The owner's view of the configuration: open, and room for every
	// device's bundle.
	for _, node := range []string{omemo.V03.DeviceListNode(), omemo.V2.DeviceListNode(), omemo.V2.BundleNode(ours), omemo.V03.BundleNode(ours)} {
		cfg, err := pubsub.Config(ctx, c1.s, jid.JID{}, node)
		if err != nil {
			t.Fatalf("config of %s: %v", node, err)
		}
		if v, _ := cfg.Get("pubsub#access_model"); v != pubsub.AccessOpen {
			t.Errorf("%s: access model %q after Announce, want open", node, v)
		}
		if node == omemo.V2.BundleNode(ours) {
			if v, _ := cfg.Get("pubsub#max_items"); v != "max" {
				t.Errorf("%s: max_items %q after Announce, want max (XEP-0384)", node, v)
			}
		}
	}
	// The phone's client publishes its bundle again as Libervia (python-
	// omemo) does, with max_items=max as its only publish-option and no
	// fallback on precondition-not-met: the node we configured must match.
	libervia := `<field var="pubsub#max_items"><value>max</value></field>`
	if resp := rawIQ(t, s, publish(seeds[2].node, seeds[2].item, seeds[2].payload, libervia)); !strings.Contains(resp, `type="result"`) {
		t.Errorf("the account's other OMEMO 2 client cannot publish its bundle after Announce: %s", resp)
	}
	// The stranger now reads both devices in both lists (labels kept) and
	// both bundles.
	set, err := d.c.FetchDevices(ctx, carol)
	if err != nil || !hasAll(map[uint32][]omemo.Version{foreign: both, ours: both})(set) || len(set) != 2 {
		t.Fatalf("carol's devices as a stranger fetches them: %v, %v; want %d and %d in both lists", set, err, foreign, ours)
	}
	for _, v := range both {
		list, err := d.c.fetchDeviceList(ctx, carol.String(), v)
		if err != nil {
			t.Fatalf("stranger fetches the %s list: %v", v, err)
		}
		labels := map[uint32]string{}
		for _, dev := range list {
			labels[dev.ID] = dev.Label
		}
		wantPhone, wantOurs := "", ""
		if v == omemo.V2 {
			wantPhone, wantOurs = "Carol's phone", "Matrix bridge"
		}
		if len(list) != 2 || labels[foreign] != wantPhone || labels[ours] != wantOurs {
			t.Errorf("%s list as a stranger reads it: %+v, want the phone (%d) and ours (%d)", v, list, foreign, ours)
		}
	}
	for _, v := range both {
		b, err := d.c.FetchBundle(ctx, carol, ours, v)
		if err != nil {
			t.Fatalf("stranger fetches our %s bundle: %v", v, err)
		}
		if string(b.IdentityKey) != string(c1.m.IdentityKey(v)) || len(b.PreKeys) != 30 {
			t.Errorf("our %s bundle is not ours (%d prekeys)", v, len(b.PreKeys))
		}
	}
	b, err := d.c.FetchBundle(ctx, carol, foreign, omemo.V2)
	if err != nil {
		t.Fatalf("stranger fetches the phone's bundle after the reconfiguration: %v", err)
	}
	if string(b.IdentityKey) != string(phone.IdentityKey(omemo.V2)) {
		t.Error("the phone's bundle is not the phone's")
	}
	// A session with our device over what the stranger fetched works.
	out, err := d.c.Encrypt(ctx, carol, "hello carol")
	if err != nil {
		t.Fatalf("stranger encrypts: %v", err)
	}
	if len(out.Recipients[omemo.V2]) != 2 || len(out.Errors) != 0 {
		t.Errorf("stranger's recipients %v (errors %v), want both devices over OMEMO 2", out.Recipients, out.Errors)
	}
}

// xmlText encodes v (an element) as XML text.
func xmlText(t *testing.T, v any) string {
	t.Helper()
	r, err := marshalReader(v)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	enc := xml.NewEncoder(&b)
	if _, err := xmlstream.Copy(enc, r); err != nil {
		t.Fatal(err)
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// noXMLNS drops the namespace declarations encoding/xml's decoder keeps as
// attributes besides each element's namespace; an encoder writes the
// namespace itself.
var noXMLNS = xmlstream.RemoveAttr(func(_ xml.StartElement, a xml.Attr) bool {
	return a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns")
})

// rawIQ sends the IQ written out in x on s (served) and returns the
// response as XML text. It goes around the pubsub package, for setting up
// what another client would have left on the server.
func rawIQ(t *testing.T, s *xmpp.Session, x string) string {
	t.Helper()
	r := noXMLNS(xml.NewDecoder(strings.NewReader(x)))
	resp, err := s.SendIQ(testCtx(t), r)
	if err != nil {
		t.Fatalf("send %s: %v", x, err)
	}
	defer resp.Close()
	var b strings.Builder
	enc := xml.NewEncoder(&b)
	if _, err := xmlstream.Copy(enc, noXMLNS(resp)); err != nil {
		t.Fatalf("read response to %s: %v", x, err)
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// readStanza reads one whole element (a stanza) from r into tokens.
func readStanza(r xml.TokenReader) ([]xml.Token, error) {
	c := xmltok.CloseOpen(r)
	var out []xml.Token
	depth := 0
	for {
		tok, err := c.Token()
		if err == io.EOF {
			if len(out) == 0 {
				return nil, fmt.Errorf("%w: no stanza", ErrMalformed)
			}
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		default:
			if depth == 0 {
				continue
			}
		}
		out = append(out, xml.CopyToken(tok))
		if depth == 0 {
			return out, nil
		}
	}
}

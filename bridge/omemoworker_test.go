package bridge

import (
	"context"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// drainOMEMOWork runs the queued OMEMO work now, in the caller (tests
// without a running worker).
func (c *Client) drainOMEMOWork(ctx context.Context) {
	w := c.omemo.Queue()
	for {
		t, ok := w.Next()
		if !ok {
			return
		}
		c.omemo.RunTask(ctx, t)
	}
}

// silentPEP is a PEP whose requests about one account are never answered:
// they wait until the caller's context ends (a server that accepts the IQ
// and stays silent). asked gets a value for each such request.
type silentPEP struct {
	omemoxmpp.PEP
	silent string
	asked  chan string
}

func (p silentPEP) Items(ctx context.Context, owner jid.JID, node string, ids ...string) ([]pubsub.Item, error) {
	if owner.Bare().String() == p.silent {
		select {
		case p.asked <- node:
		default:
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return p.PEP.Items(ctx, owner, node, ids...)
}

// within runs f and fails the test when it does not return in d.
func within[T any](t *testing.T, d time.Duration, what string, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	start := time.Now()
	go func() { done <- f() }()
	select {
	case v := <-done:
		t.Logf("%s: %v", what, time.Since(start).Round(time.Millisecond))
		return v
	case <-time.After(d):
		t.Fatalf("%s did not finish in %v: the login is stuck", what, d)
	}
	var zero T
	return zero
}

// TestOMEMOSilentPEP: a contact on a server that never answers sends an
// OMEMO message the bridge has no session for, so the bridge wants that
// device's bundle for a session reset. That fetch hangs, but the incoming
// message is answered at once (with a notice), other contacts' messages
// keep being decrypted, and encrypted sends to them go out.
func TestOMEMOSilentPEP(t *testing.T) {
	f := newInboxFixture(t)
	ctx := context.Background()
	const mallory = "mallory@silent.example"
	asked := make(chan string, 16)
	m := f.c.omemoClient().Manager()
	oc, err := omemoxmpp.New(m, f.c.omemoStore(), silentPEP{PEP: accountPEP{f.srv, "alice@localhost"}, silent: mallory, asked: asked}, omemoxmpp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.c.omemo.Use(oc)
	workerCtx, stop := context.WithCancel(ctx)
	defer stop()
	f.c.omemo.Start(workerCtx) // the OMEMO queue runs on it

	// Mallory's device (its own server answers mallory, not us).
	ms := omemo.NewMemoryStore()
	mm := omemo.NewManager(ms, mallory, omemo.Options{PreKeys: 25})
	if err := mm.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	mxc, err := omemoxmpp.New(mm, ms, accountPEP{f.srv, mallory}, omemoxmpp.Options{Versions: []omemo.Version{omemo.V2}})
	if err != nil {
		t.Fatal(err)
	}
	if err := mxc.Announce(ctx); err != nil {
		t.Fatal(err)
	}
	malloryJID := jid.MustParse(mallory)
	fromMallory := func(id string, out *omemoxmpp.Outgoing) *stanzabuf.Stanza {
		from, _ := malloryJID.WithResource("x")
		r, err := omemoxmpp.BuildMessage(stanza.Message{From: from, To: f.alice, ID: id, Type: stanza.ChatMessage}, out)
		if err != nil {
			t.Fatal(err)
		}
		st, err := stanzabuf.Read(r)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	// A session, then the bridge loses it: mallory's next message is one
	// the bridge has no session for (as from an unknown device).
	first, err := mxc.Encrypt(ctx, f.alice, "hello")
	if err != nil {
		t.Fatal(err)
	}
	in, err := f.receive(t, fromMallory("m1", first))
	if err != nil || in.Body != "hello" {
		t.Fatalf("first message from mallory: %q, %v", in.Body, err)
	}
	hb, err := oc.EncryptEmpty(ctx, malloryJID, mm.DeviceID(), omemo.V2)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := omemoxmpp.BuildMessage(stanza.Message{From: f.alice, To: malloryJID, Type: stanza.ChatMessage}, hb)
	if _, err := mxc.DecryptStanza(ctx, r); err != nil {
		t.Fatal(err)
	}
	second, err := mxc.Encrypt(ctx, f.alice, "no session for this")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.DeleteSession(ctx, omemo.V2, omemo.Address{JID: mallory, Device: mm.DeviceID()}); err != nil {
		t.Fatal(err)
	}

	type result struct {
		in  *incoming
		err error
	}
	res := within(t, 10*time.Second, "message without session from the silent server's contact", func() result {
		in, err := f.receive(t, fromMallory("m2", second))
		return result{in, err}
	})
	if res.err != nil || res.in.OMEMO == nil || !res.in.OMEMO.Failed {
		t.Fatalf("mallory's undecryptable message: %q %+v %v, want a notice", res.in.Body, res.in.OMEMO, res.err)
	}
	select {
	case <-asked:
	case <-time.After(10 * time.Second):
		t.Fatal("the bridge never asked mallory's server for the bundle (no session reset)")
	}

	// While that fetch hangs: bob's messages are bridged, and the user's
	// encrypted messages to bob go out.
	for i, body := range []string{"bob one", "bob two"} {
		out := f.encrypt(t, f.bobXC, body)
		res := within(t, 10*time.Second, "bob's message", func() result {
			in, err := f.receive(t, f.stanza(t, "b"+string(rune('0'+i)), out))
			return result{in, err}
		})
		wantBody(t, res.in, res.err, body)
	}
	enc := within(t, 10*time.Second, "encrypted send to bob", func() error {
		_, err := f.c.omemo.EncryptChat(ctx, f.bob, "to bob")
		return err
	})
	if enc != nil {
		t.Fatalf("encrypting for bob: %v", enc)
	}

	// A stranger inventing device ids cannot make the bridge queue
	// unbounded work.
	for i := 0; i < 100; i++ {
		f.c.omemo.ResetIfDue(ctx, jid.MustParse("flood@silent.example"), uint32(1000+i), omemo.V2, omemo.ErrNoSession)
	}
	n := f.c.omemo.Queue().Admitted(xmppclient.OMEMOTask{Kind: xmppclient.TaskReset, Peer: jid.MustParse("flood@silent.example")})
	if n == 0 || n > xmppclient.OMEMOPerJIDMax {
		t.Errorf("%d resets admitted after a flood from one JID, want 1 to %d", n, xmppclient.OMEMOPerJIDMax)
	}
	if !strings.Contains(res.in.Body, mallory) {
		t.Errorf("notice %q does not name the sender", res.in.Body)
	}
}

// TestKeyChangeNotice: a changed identity key on a known device is never
// silent: a notice naming the device, the new fingerprint and the command
// is queued.
func TestKeyChangeNotice(t *testing.T) {
	f := newInboxFixture(t)
	ctx := context.Background()
	msg := &omemoxmpp.Message{Version: omemo.V2, Sender: omemo.Address{JID: f.bob.String(), Device: 77},
		KeyChanged: true, Fingerprint: "0123abcd", Trusted: false}
	f.c.omemo.AfterTrust(ctx, xmppclient.DecryptRequest{Sender: f.bob, Peer: f.bob}, msg)
	var got *xmppclient.OMEMOTask
	for _, task := range f.c.omemo.Queue().Pending() {
		if task.Kind == xmppclient.TaskKeyChanged {
			got = &task
		}
	}
	if got == nil || !got.Peer.Equal(f.bob) || got.Device != 77 || got.Fingerprint != "0123abcd" {
		t.Fatalf("queued key change task %+v", got)
	}
	text := keyChangeNotice(got.Peer.String(), got.Device, got.Fingerprint)
	for _, want := range []string{"bob@localhost", "device 77", "0123abcd", "omemo trust bob@localhost 77"} {
		if !strings.Contains(text, want) {
			t.Errorf("notice %q lacks %q", text, want)
		}
	}
}

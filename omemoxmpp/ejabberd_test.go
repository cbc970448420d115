//go:build integration

package omemoxmpp

import (
	"testing"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/internal/testenv"
	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/xmpp/conn"
)

// ejabberdClient connects account on ejabberd, serves the session and
// returns an OMEMO client with a fresh device.
func ejabberdClient(t *testing.T, e *testenv.Ejabberd, account jid.JID, pw string) *Client {
	t.Helper()
	s, err := conn.Dial(testCtx(t), conn.Config{
		JID: account, Password: pw, Host: e.Host(), Port: uint16(e.Port()),
		InsecureTLSHosts: []string{e.Domain()}, Timeout: 20 * time.Second,
	})
	if err != nil {
		t.Fatalf("failed to connect %s: %v", account, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	go func() { _ = s.Serve(mux.New(stanza.NSClient)) }()
	store := omemo.NewMemoryStore()
	m := omemo.NewManager(store, account.Bare().String(), omemo.Options{PreKeys: 30})
	if err := m.Setup(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	c, err := NewSession(m, store, s, Options{Label: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var _ = xmpp.Secure

// TestEjabberdAnnounce announces a device on a stock ejabberd 23.01, which
// refuses any pubsub#max_items in publish-options ("Unknown field"): both
// versions must still be announced (bundle, then device list), and a
// stranger must read the device and both bundles.
func TestEjabberdAnnounce(t *testing.T) {
	e := testenv.SharedEjabberd(t)
	alice := jid.MustParse(e.CreateAccount(t, unique("ann"), "pw"))
	bob := jid.MustParse(e.CreateAccount(t, unique("stranger"), "pw"))
	ac := ejabberdClient(t, e, alice, "pw")
	if err := ac.Announce(testCtx(t)); err != nil {
		t.Fatalf("Announce: %v", err)
	}
	for v, r := range ac.AnnounceStatus() {
		if r.Err != nil || r.At.IsZero() {
			t.Errorf("%s: status %+v", v, r)
		}
	}
	// A second client of the same account: its OMEMO 2 bundle must not
	// evict the first one's (the bundles node holds one item per device).
	ac2 := ejabberdClient(t, e, alice, "pw")
	if err := ac2.Announce(testCtx(t)); err != nil {
		t.Fatalf("second Announce: %v", err)
	}
	bc := ejabberdClient(t, e, bob, "pw")
	set, err := bc.FetchDevices(testCtx(t), alice)
	if err != nil {
		t.Fatalf("FetchDevices: %v", err)
	}
	for _, dev := range []uint32{ac.Manager().DeviceID(), ac2.Manager().DeviceID()} {
		for _, v := range []omemo.Version{omemo.V2, omemo.V03} {
			if !set.Speaks(dev, v) {
				t.Errorf("%s: device %d not in the device list the stranger reads: %v", v, dev, set)
			}
			if _, err := bc.FetchBundle(testCtx(t), alice, dev, v); err != nil {
				t.Errorf("%s: stranger cannot read the bundle of device %d: %v", v, dev, err)
			}
		}
	}
}

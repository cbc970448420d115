package omemoxmpp

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	_ "go.mau.fi/util/dbutil/litestream"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/migrations"
	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemostore"
)

// The bridge runs the Client on the SQL store: device lists must keep
// "unknown" (nil) apart from "known to be empty", and a restart must find
// the sessions again.
func TestSQLStore(t *testing.T) {
	ctx := context.Background()
	raw, err := dbutil.NewWithDialect("file:"+filepath.Join(t.TempDir(), "bridge.db")+"?_txlock=immediate", "sqlite3-fk-wal")
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	db := migrations.Child(raw, dbutil.ZeroLogger(zerolog.Nop()))
	if err := db.Upgrade(ctx); err != nil {
		t.Fatalf("upgrade: %v", err)
	}

	srv := newFakeServer()
	newSQL := func() *Client {
		st := omemostore.New(db, "login-1")
		m := omemo.NewManager(st, "alice@example.org", omemo.Options{PreKeys: 25})
		if err := m.Setup(ctx); err != nil {
			t.Fatalf("setup: %v", err)
		}
		c, err := New(m, st, srv.pep("alice@example.org"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := newSQL()
	if err := a.Announce(ctx); err != nil {
		t.Fatalf("announce: %v", err)
	}
	b := newDevice(t, srv, "bob@example.org", Options{})
	b.announce(t)

	out, err := a.Encrypt(ctx, jid.MustParse("bob@example.org"), "over SQL")
	if err != nil {
		t.Fatalf("encrypt: %v", err)
	}
	if m, err := b.c.DecryptStanza(ctx, stanzaReader(t, "alice@example.org/r", out)); err != nil || m.Body != "over SQL" {
		t.Fatalf("decrypt: %+v, %v", m, err)
	}
	// carol has no OMEMO: known-empty is stored and not fetched again.
	if _, err := a.Encrypt(ctx, jid.MustParse("carol@example.org"), "x"); !errors.Is(err, ErrNoDevices) {
		t.Fatalf("carol: %v", err)
	}

	// After a restart, with PEP unreachable, the stored lists and sessions
	// are enough.
	a = newSQL()
	a.pep = &fakePEP{s: srv, owner: "alice@example.org", fail: map[string]error{
		omemo.V2.DeviceListNode(): errors.New("offline"), omemo.V03.DeviceListNode(): errors.New("offline"),
		omemo.V2.BundleNode(0): errors.New("offline"),
	}}
	if _, err := a.Encrypt(ctx, jid.MustParse("carol@example.org"), "x"); !errors.Is(err, ErrNoDevices) {
		t.Errorf("carol after restart: %v (fetched again?)", err)
	}
	out, err = a.Encrypt(ctx, jid.MustParse("bob@example.org"), "after restart")
	if err != nil {
		t.Fatalf("encrypt after restart: %v", err)
	}
	m, err := b.c.DecryptStanza(ctx, stanzaReader(t, "alice@example.org/r", out))
	if err != nil || m.Body != "after restart" || m.PreKeyConsumed {
		t.Fatalf("decrypt after restart: %+v, %v", m, err)
	}
}

package omemostore_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	_ "go.mau.fi/util/dbutil/litestream"

	"github.com/mxomemo/xmpp-bridge/internal/testenv"
	"github.com/mxomemo/xmpp-bridge/migrations"
	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemostore"
)

func openSQLite(t *testing.T) *dbutil.Database {
	t.Helper()
	uri := "file:" + filepath.Join(t.TempDir(), "bridge.db") + "?_txlock=immediate"
	return openDB(t, "sqlite3-fk-wal", uri)
}

func openDB(t *testing.T, dialect, uri string) *dbutil.Database {
	t.Helper()
	raw, err := dbutil.NewWithDialect(uri, dialect)
	if err != nil {
		t.Fatalf("open %s: %v", dialect, err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	db := migrations.Child(raw, dbutil.ZeroLogger(zerolog.Nop()))
	if err := db.Upgrade(context.Background()); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	return db
}

// testStore runs the engine on the SQL store for one side of a conversation
// and checks what it persisted.
func testStore(t *testing.T, db *dbutil.Database) {
	ctx := context.Background()
	for _, v := range []omemo.Version{omemo.V03, omemo.V2} {
		t.Run(v.String(), func(t *testing.T) {
			account := "login-" + v.String()
			alice := omemo.NewManager(omemostore.New(db, account), "alice@localhost", omemo.Options{})
			bob := omemo.NewManager(omemo.NewMemoryStore(), "bob@localhost", omemo.Options{})
			if err := alice.Setup(ctx); err != nil {
				t.Fatalf("alice setup: %v", err)
			}
			if err := bob.Setup(ctx); err != nil {
				t.Fatalf("bob setup: %v", err)
			}
			// A second Setup on the same store must find the identity again.
			again := omemo.NewManager(omemostore.New(db, account), "alice@localhost", omemo.Options{})
			if err := again.Setup(ctx); err != nil {
				t.Fatalf("alice setup again: %v", err)
			}
			if again.DeviceID() != alice.DeviceID() || again.Fingerprint() != alice.Fingerprint() {
				t.Fatalf("identity not persisted: %d/%d", again.DeviceID(), alice.DeviceID())
			}
			pks, err := omemostore.New(db, account).PreKeys(ctx)
			if err != nil || len(pks) != 100 {
				t.Fatalf("prekeys: %d, %v", len(pks), err)
			}

			bundle, err := alice.Bundle(ctx, v)
			if err != nil {
				t.Fatalf("bundle: %v", err)
			}
			aliceAddr := omemo.Address{JID: "alice@localhost", Device: alice.DeviceID()}
			bobAddr := omemo.Address{JID: "bob@localhost", Device: bob.DeviceID()}
			enc, errs, err := bob.Encrypt(ctx, v, plaintext(v, "bob@localhost", "hi alice"), []omemo.Recipient{{Address: aliceAddr, Bundle: bundle}})
			if err != nil || len(errs) != 0 {
				t.Fatalf("bob encrypt: %v %v", err, errs)
			}

			// A failed transaction must leave no trace: the prekey stays and no session is stored.
			errRollback := errors.New("rollback")
			err = db.DoTxn(ctx, nil, func(ctx context.Context) error {
				if _, err := alice.Decrypt(ctx, enc, "bob@localhost"); err != nil {
					return err
				}
				return errRollback
			})
			if !errors.Is(err, errRollback) {
				t.Fatalf("txn: %v", err)
			}
			if has, err := alice.HasSession(ctx, v, bobAddr); err != nil || has {
				t.Fatalf("session survived rollback: %v %v", has, err)
			}

			dec, err := alice.Decrypt(ctx, enc, "bob@localhost")
			if err != nil {
				t.Fatalf("alice decrypt: %v", err)
			}
			if !dec.PreKeyConsumed || !dec.NewSession {
				t.Fatalf("expected a consumed prekey and new session: %+v", dec)
			}
			// HasSession is the store's existence query (SessionChecker): it
			// must tell this device apart from another device and version.
			other := map[omemo.Version]omemo.Version{omemo.V03: omemo.V2, omemo.V2: omemo.V03}[v]
			for _, c := range []struct {
				v    omemo.Version
				addr omemo.Address
				want bool
			}{
				{v, bobAddr, true},
				{other, bobAddr, false},
				{v, omemo.Address{JID: bobAddr.JID, Device: bobAddr.Device + 1}, false},
				{v, omemo.Address{JID: "carol@localhost", Device: bobAddr.Device}, false},
			} {
				if has, err := omemostore.New(db, account).HasSession(ctx, c.v, c.addr); err != nil || has != c.want {
					t.Fatalf("HasSession(%s, %s) = %v, %v; want %v", c.v, c.addr, has, err, c.want)
				}
			}
			if !bytes.Contains(dec.Plaintext, []byte("hi alice")) {
				t.Fatalf("plaintext %q", dec.Plaintext)
			}
			if _, err := alice.Decrypt(ctx, enc, "bob@localhost"); err == nil {
				t.Fatal("replayed key exchange decrypted twice")
			}

			// Alice's reply uses the stored session, read back from the database.
			reloaded := omemo.NewManager(omemostore.New(db, account), "alice@localhost", omemo.Options{})
			if err := reloaded.Setup(ctx); err != nil {
				t.Fatal(err)
			}
			reply, errs, err := reloaded.Encrypt(ctx, v, plaintext(v, "alice@localhost", "hi bob"), []omemo.Recipient{{Address: bobAddr}})
			if err != nil || len(errs) != 0 {
				t.Fatalf("alice encrypt: %v %v", err, errs)
			}
			got, err := bob.Decrypt(ctx, reply, "alice@localhost")
			if err != nil || !bytes.Contains(got.Plaintext, []byte("hi bob")) {
				t.Fatalf("bob decrypt: %v %+v", err, got)
			}

			recs, err := reloaded.Devices(ctx, "bob@localhost")
			if err != nil || len(recs) != 1 || recs[0].Device != bob.DeviceID() || recs[0].Level != omemo.TrustTrusted {
				t.Fatalf("trust records: %+v %v", recs, err)
			}
			if err := reloaded.DeleteSession(ctx, v, bobAddr); err != nil {
				t.Fatal(err)
			}
			if has, err := reloaded.HasSession(ctx, v, bobAddr); err != nil || has {
				t.Fatalf("session survived DeleteSession: %v %v", has, err)
			}
		})
	}
}

func plaintext(v omemo.Version, from, body string) []byte {
	if v == omemo.V03 {
		return []byte(body)
	}
	env, err := (&omemo.Envelope{Content: []byte("<body xmlns='jabber:client'>" + body + "</body>"), From: from}).Marshal(nil)
	if err != nil {
		panic(err)
	}
	return env
}

func TestDeviceListAndIsolation(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	a, b := omemostore.New(db, "a"), omemostore.New(db, "b")
	if l, err := a.DeviceList(ctx, omemo.V2, "x@y"); err != nil || l != nil {
		t.Fatalf("unknown list: %v %v", l, err)
	}
	if err := a.PutDeviceList(ctx, omemo.V2, "x@y", nil); err != nil {
		t.Fatal(err)
	}
	if l, err := a.DeviceList(ctx, omemo.V2, "x@y"); err != nil || l == nil || len(l) != 0 {
		t.Fatalf("known empty list must not be nil: %v %v", l, err)
	}
	want := []omemo.Device{{ID: 1, Label: "phone"}, {ID: 4294967295}}
	if err := a.PutDeviceList(ctx, omemo.V2, "x@y", want); err != nil {
		t.Fatal(err)
	}
	got, err := a.DeviceList(ctx, omemo.V2, "x@y")
	if err != nil || len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("device list: %v %v", got, err)
	}
	if l, _ := b.DeviceList(ctx, omemo.V2, "x@y"); l != nil {
		t.Fatalf("account b sees a's list: %v", l)
	}
	if l, _ := a.DeviceList(ctx, omemo.V03, "x@y"); l != nil {
		t.Fatalf("0.3 list shares 2's row: %v", l)
	}
	if err := a.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if l, _ := a.DeviceList(ctx, omemo.V2, "x@y"); l != nil {
		t.Fatalf("list survived Delete: %v", l)
	}
}

func TestSQLite(t *testing.T) {
	testStore(t, openSQLite(t))
}

func TestPostgres(t *testing.T) {
	pg := testenv.StartPostgres(t)
	testStore(t, openDB(t, "postgres", pg.CreateDatabase(t, "omemostore")))
}

package omemo

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Fuzz targets for every parser and for decryption of mutated messages.
// Seeds come from f.Add and testdata/fuzz/<name>/ (written by
// TestWriteFuzzCorpus with OMEMO_WRITE_CORPUS=1). CI runs each briefly:
//
//	go test -tags goolm -run x -fuzz FuzzDecrypt -fuzztime 10s ./omemo/

func versionOf(b uint8) Version {
	if b&1 == 0 {
		return V03
	}
	return V2
}

func FuzzRatchetMessage(f *testing.F) {
	for _, s := range fuzzSeeds(f).ratchet {
		f.Add(s.v, s.data)
	}
	f.Fuzz(func(t *testing.T, vb uint8, data []byte) {
		v := versionOf(vb)
		m, err := parseRatchetMessage(v, data)
		if err != nil {
			return
		}
		back, err := parseRatchetMessage(v, appendRatchetMessage(nil, v, m))
		if err != nil || back.dh != m.dh || back.n != m.n || back.pn != m.pn || !bytes.Equal(back.ciphertext, m.ciphertext) {
			t.Fatalf("round trip changed %+v to %+v (%v)", m, back, err)
		}
	})
}

func FuzzKeyExchange(f *testing.F) {
	for _, s := range fuzzSeeds(f).kex {
		f.Add(s.v, s.data)
	}
	f.Fuzz(func(t *testing.T, vb uint8, data []byte) {
		v := versionOf(vb)
		k, err := parseKeyExchange(v, data)
		if err != nil {
			return
		}
		back, err := parseKeyExchange(v, appendKeyExchange(nil, v, k))
		if err != nil || back.ik != k.ik || back.ek != k.ek || back.spkID != k.spkID || back.pkID != k.pkID || !bytes.Equal(back.message, k.message) {
			t.Fatalf("round trip changed %+v to %+v (%v)", k, back, err)
		}
	})
}

func FuzzAuthenticated(f *testing.F) {
	for _, s := range fuzzSeeds(f).auth {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		mac, msg, err := parseAuthenticated(data)
		if err != nil {
			return
		}
		m2, msg2, err := parseAuthenticated(appendAuthenticated(nil, mac, msg))
		if err != nil || !bytes.Equal(mac, m2) || !bytes.Equal(msg, msg2) {
			t.Fatal("round trip changed the message")
		}
	})
}

// xmlRoundTrip checks that what parses re-encodes to something that parses
// to the same value.
func xmlRoundTrip[T any](t *testing.T, data []byte, parse func([]byte) (*T, error), marshal func(*T) ([]byte, error)) {
	v, err := parse(data)
	if err != nil {
		return
	}
	x, err := marshal(v)
	if err != nil {
		t.Fatalf("marshal of parsed value: %v", err)
	}
	v2, err := parse(x)
	if err != nil {
		t.Fatalf("re-parse of %s: %v", x, err)
	}
	x2, _ := marshal(v2)
	if !bytes.Equal(x, x2) {
		t.Fatalf("unstable round trip:\n%s\n%s", x, x2)
	}
}

func FuzzBundleXML(f *testing.F) {
	for _, s := range fuzzSeeds(f).bundles {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		xmlRoundTrip(t, data, ParseBundle, (*Bundle).Marshal)
	})
}

func FuzzDeviceListXML(f *testing.F) {
	for _, s := range fuzzSeeds(f).deviceLists {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		xmlRoundTrip(t, data, ParseDeviceList, (*DeviceList).Marshal)
	})
}

func FuzzEncryptedXML(f *testing.F) {
	for _, s := range fuzzSeeds(f).encrypted {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		xmlRoundTrip(t, data, ParseEncrypted, (*Encrypted).Marshal)
	})
}

func FuzzEnvelope(f *testing.F) {
	for _, s := range fuzzSeeds(f).envelopes {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseEnvelope(data, "")
		if err != nil {
			return
		}
		x, err := e.Marshal(nil)
		if err != nil {
			return // content that is not a fragment we would write
		}
		e2, err := ParseEnvelope(x, e.From)
		if err != nil || !bytes.Equal(e2.Content, e.Content) || e2.To != e.To {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzSessionRecord(f *testing.F) {
	for _, s := range fuzzSeeds(f).records {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := parseRecord(data)
		if err != nil {
			return
		}
		if !bytes.Equal(rec.bytes(), data) {
			t.Fatal("record round trip differs")
		}
		for _, raw := range rec.sessions {
			s, err := unmarshalSession(raw)
			if err != nil {
				continue
			}
			if !bytes.Equal(s.marshal(), raw) {
				t.Fatal("session round trip differs")
			}
		}
	})
}

// FuzzDecrypt feeds mutated <key/> data, IVs and payloads to a receiver with
// sessions; whatever is accepted must be the original plaintext.
func FuzzDecrypt(f *testing.F) {
	fx := fuzzSeeds(f)
	for _, s := range fx.decrypt {
		f.Add(s.v, s.kex, s.data, s.iv, s.payload)
	}
	f.Fuzz(func(t *testing.T, vb uint8, kex bool, data, iv, payload []byte) {
		v := versionOf(vb)
		recv, store := fx.receiverStore(t, v, !kex)
		enc := &Encrypted{Version: v, SenderDevice: fx.sender[v].Device, IV: iv, Payload: payload,
			Keys: []EncryptedKey{{JID: fx.recvJID, Device: recv.DeviceID(), KeyExchange: kex, Data: data}}}
		before := store.dump()
		d, err := recv.Decrypt(context.Background(), enc, fx.sender[v].JID)
		if err != nil {
			// All or nothing: a failed decryption leaves no trace.
			if store.dump() != before {
				t.Fatalf("failed decryption (%v) changed the store", err)
			}
			return
		}
		if d.Plaintext != nil && !bytes.HasPrefix(d.Plaintext, []byte("fuzz message")) {
			t.Fatalf("forged plaintext %q", d.Plaintext)
		}
	})
}

type versioned struct {
	v    uint8
	data []byte
}

type decryptSeed struct {
	v                 uint8
	kex               bool
	data, iv, payload []byte
}

type fuzzFixture struct {
	ratchet, kex                          []versioned
	auth, bundles, deviceLists, encrypted [][]byte
	envelopes, records                    [][]byte
	decrypt                               []decryptSeed
	recvJID                               string
	sender                                map[Version]Address
	// stores hold the receiver before the key exchange (false) and with
	// the session (true).
	stores map[bool]map[Version]*MemoryStore
}

var (
	fuzzOnce sync.Once
	fuzzFx   *fuzzFixture
)

func (s *MemoryStore) clone() *MemoryStore {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := NewMemoryStore()
	id := *s.identity
	c.identity = &id
	c.preKeys = maps.Clone(s.preKeys)
	c.signedPreKeys = maps.Clone(s.signedPreKeys)
	for k, e := range s.sessions {
		c.sessions[k] = &memSession{rec: bytes.Clone(e.rec)}
	}
	c.deviceLists = maps.Clone(s.deviceLists)
	c.trust = maps.Clone(s.trust)
	return c
}

var fuzzEpoch = time.Unix(1_700_000_000, 0)

// receiver returns a fresh Manager on a copy of the fixture's receiving store.
func (fx *fuzzFixture) receiver(t *testing.T, v Version, withSession bool) *Manager {
	m, _ := fx.receiverStore(t, v, withSession)
	return m
}

// receiverStore is receiver with its store, for checks on what decryption left in it.
func (fx *fuzzFixture) receiverStore(t *testing.T, v Version, withSession bool) (*Manager, *MemoryStore) {
	store := fx.stores[withSession][v].clone()
	m := NewManager(store, fx.recvJID, Options{PreKeys: 5, Now: func() time.Time { return fuzzEpoch }})
	if err := m.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m, store
}

// fuzzSeeds builds real messages, bundles and records deterministically.
func fuzzSeeds(tb testing.TB) *fuzzFixture {
	fuzzOnce.Do(func() {
		t := tb
		rnd := rand.New(rand.NewSource(42))
		opts := Options{Rand: rnd, PreKeys: 5, Now: func() time.Time { return fuzzEpoch }}
		fx := &fuzzFixture{recvJID: "bob@example.org", sender: map[Version]Address{}, stores: map[bool]map[Version]*MemoryStore{false: {}, true: {}}}
		ctx := context.Background()
		for _, v := range []Version{V03, V2} {
			vb := uint8(0)
			if v == V2 {
				vb = 1
			}
			a := newPeer(t, "alice@example.org", opts)
			b := newPeer(t, fx.recvJID, opts)
			fx.sender[v] = a.addr()
			bundle, _ := b.m.Bundle(ctx, v)
			bx, _ := bundle.Marshal()
			fx.bundles = append(fx.bundles, bx)
			dl, _ := (&DeviceList{Version: v, Devices: []Device{{ID: 1, Label: "phone"}, {ID: 2}}}).Marshal()
			fx.deviceLists = append(fx.deviceLists, dl)
			// First message (key exchange); the receiver's store is saved
			// before it so the key exchange is fresh for the fuzzer.
			fx.stores[false][v] = b.s.clone()
			e1, _, _ := a.m.Encrypt(ctx, v, []byte("fuzz message 1"), []Recipient{{Address: b.addr(), Bundle: bundle}})
			d1 := e1.Keys[0].Data
			fx.decrypt = append(fx.decrypt, decryptSeed{vb, true, d1, e1.IV, e1.Payload})
			ex, _ := e1.Marshal()
			fx.encrypted = append(fx.encrypted, ex)
			body := d1
			if v == V03 {
				body = d1[1:]
			}
			if kx, err := parseKeyExchange(v, body); err == nil {
				fx.kex = append(fx.kex, versioned{vb, body})
				inner := kx.message
				if v == V03 {
					fx.ratchet = append(fx.ratchet, versioned{vb, inner[1 : len(inner)-8]})
				} else {
					fx.auth = append(fx.auth, inner)
					if _, msg, err := parseAuthenticated(inner); err == nil {
						fx.ratchet = append(fx.ratchet, versioned{vb, msg})
					}
				}
			}
			recv(t, b, a, e1)
			recv(t, a, b, send(t, b, a, v, "reply", false))
			e2, _, _ := a.m.Encrypt(ctx, v, []byte("fuzz message 2"), []Recipient{{Address: b.addr()}})
			fx.decrypt = append(fx.decrypt, decryptSeed{vb, false, e2.Keys[0].Data, e2.IV, e2.Payload})
			e3, _, _ := a.m.EncryptEmpty(ctx, v, []Recipient{{Address: b.addr()}})
			fx.decrypt = append(fx.decrypt, decryptSeed{vb, false, e3.Keys[0].Data, e3.IV, e3.Payload})
			// Receiver store with the session, for the normal messages.
			fx.stores[true][v] = b.s.clone()
			raw, _ := b.s.Session(ctx, v, a.addr())
			fx.records = append(fx.records, raw)
			env, _ := (&Envelope{Content: []byte("<body xmlns='jabber:client'>hi</body>"), From: "alice@example.org", To: "room@muc.example.org", Time: fuzzEpoch}).Marshal(rnd)
			fx.envelopes = append(fx.envelopes, env)
		}
		fuzzFx = fx
	})
	return fuzzFx
}

// TestWriteFuzzCorpus writes the seed corpora under testdata/fuzz.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("OMEMO_WRITE_CORPUS") == "" {
		t.Skip("set OMEMO_WRITE_CORPUS=1 to rewrite testdata/fuzz")
	}
	fx := fuzzSeeds(t)
	write := func(name string, i int, vals ...any) {
		var b bytes.Buffer
		b.WriteString("go test fuzz v1\n")
		for _, v := range vals {
			switch x := v.(type) {
			case []byte:
				fmt.Fprintf(&b, "[]byte(%s)\n", strconv.Quote(string(x)))
			case uint8:
				fmt.Fprintf(&b, "uint8(%d)\n", x)
			case bool:
				fmt.Fprintf(&b, "bool(%v)\n", x)
			}
		}
		dir := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%d", i)), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range fx.ratchet {
		write("FuzzRatchetMessage", i, s.v, s.data)
	}
	for i, s := range fx.kex {
		write("FuzzKeyExchange", i, s.v, s.data)
	}
	for i, s := range fx.auth {
		write("FuzzAuthenticated", i, s)
	}
	for i, s := range fx.bundles {
		write("FuzzBundleXML", i, s)
	}
	for i, s := range fx.deviceLists {
		write("FuzzDeviceListXML", i, s)
	}
	for i, s := range fx.encrypted {
		write("FuzzEncryptedXML", i, s)
	}
	for i, s := range fx.envelopes {
		write("FuzzEnvelope", i, s)
	}
	for i, s := range fx.records {
		write("FuzzSessionRecord", i, s)
	}
	for i, s := range fx.decrypt {
		write("FuzzDecrypt", i, s.v, s.kex, s.data, s.iv, s.payload)
	}
}

// TestFuzzSeedsDecrypt makes sure FuzzDecrypt's seeds reach the success
// path, so mutations start from valid messages.
func TestFuzzSeedsDecrypt(t *testing.T) {
	fx := fuzzSeeds(t)
	for i, s := range fx.decrypt {
		v := versionOf(s.v)
		m := fx.receiver(t, v, !s.kex)
		enc := &Encrypted{Version: v, SenderDevice: fx.sender[v].Device, IV: s.iv, Payload: s.payload,
			Keys: []EncryptedKey{{JID: fx.recvJID, Device: m.DeviceID(), KeyExchange: s.kex, Data: s.data}}}
		if _, err := m.Decrypt(context.Background(), enc, fx.sender[v].JID); err != nil {
			t.Errorf("seed %d: %v", i, err)
		}
	}
}

package omemo

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func key32of(b byte) (k [32]byte) {
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

func TestRatchetMessageEncoding(t *testing.T) {
	m := ratchetMessage{dh: key32of(1), n: 7, pn: 300, ciphertext: []byte("0123456789abcdef")}
	for _, tc := range []struct {
		v    Version
		want string
	}{
		// SignalMessage: ratchetKey=1 (0x05‖key), counter=2, previousCounter=3, ciphertext=4.
		{V03, "0a2105" + hex.EncodeToString(m.dh[:]) + "1007" + "18ac02" + "2210" + hex.EncodeToString(m.ciphertext)},
		// OMEMOMessage: n=1, pn=2, dh_pub=3, ciphertext=4.
		{V2, "0807" + "10ac02" + "1a20" + hex.EncodeToString(m.dh[:]) + "2210" + hex.EncodeToString(m.ciphertext)},
	} {
		got := appendRatchetMessage(nil, tc.v, &m)
		if hex.EncodeToString(got) != tc.want {
			t.Errorf("%s: encoded %x, want %s", tc.v, got, tc.want)
		}
		back, err := parseRatchetMessage(tc.v, got)
		if err != nil {
			t.Fatalf("%s: %v", tc.v, err)
		}
		if back.dh != m.dh || back.n != m.n || back.pn != m.pn || !bytes.Equal(back.ciphertext, m.ciphertext) {
			t.Errorf("%s: round trip gave %+v", tc.v, back)
		}
	}
	// Zero counters omitted (proto3 senders) decode as zero; unknown fields skipped.
	b := appendPubKey(nil, V03, 1, &m.dh)
	b = appendBytes(b, 4, []byte("x"))
	b = appendUint(b, 99, 5)
	b = protowire.AppendTag(b, 98, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, 1)
	if got, err := parseRatchetMessage(V03, b); err != nil || got.n != 0 || got.pn != 0 {
		t.Errorf("omitted counters: %+v %v", got, err)
	}
}

func TestProtoMalformed(t *testing.T) {
	dh := key32of(9)
	good2 := appendRatchetMessage(nil, V2, &ratchetMessage{dh: dh, n: 1, ciphertext: []byte("c")})
	for _, tc := range []struct {
		name string
		v    Version
		b    []byte
	}{
		{"empty", V2, nil},
		{"truncated", V2, good2[:len(good2)-1]},
		{"truncated tag", V2, []byte{0x80}},
		{"length beyond end", V2, append(protowire.AppendTag(nil, 4, protowire.BytesType), 0xff, 0x01)},
		{"group wire type", V2, append(bytes.Clone(good2), protowire.AppendTag(nil, 7, protowire.StartGroupType)...)},
		{"invalid wire type", V2, append(bytes.Clone(good2), 0x0e)},
		{"dh as varint", V2, appendUint(appendBytes(nil, 4, []byte("c")), 3, 5)},
		{"counter as bytes", V2, appendBytes(bytes.Clone(good2), 1, []byte("x"))},
		{"counter over 32 bits", V2, appendBytes(protowire.AppendVarint(protowire.AppendTag(appendPubKey(nil, V2, 3, &dh), 1, protowire.VarintType), 1<<33), 4, []byte("c"))},
		{"short dh", V2, appendBytes(appendBytes(nil, 3, dh[:31]), 4, []byte("c"))},
		{"dh without type byte", V03, appendBytes(appendBytes(nil, 1, dh[:]), 4, []byte("c"))},
		{"dh wrong type byte", V03, appendBytes(appendBytes(nil, 1, append([]byte{0x06}, dh[:]...)), 4, []byte("c"))},
		{"no ciphertext", V2, appendPubKey(nil, V2, 3, &dh)},
		{"no dh", V2, appendBytes(nil, 4, []byte("c"))},
		{"oversize ciphertext", V2, appendBytes(appendPubKey(nil, V2, 3, &dh), 4, make([]byte, maxCipher+1))},
	} {
		if _, err := parseRatchetMessage(tc.v, tc.b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", tc.name, err)
		}
	}
}

func TestKeyExchangeEncoding(t *testing.T) {
	for _, v := range []Version{V03, V2} {
		kx := keyExchange{pkID: 17, hasPK: true, spkID: 3, ik: key32of(2), ek: key32of(3), message: []byte("inner"), regID: 99}
		b := appendKeyExchange(nil, v, &kx)
		got, err := parseKeyExchange(v, b)
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if v == V2 {
			kx.regID = 0
		}
		if got.pkID != kx.pkID || !got.hasPK || got.spkID != kx.spkID || got.ik != kx.ik || got.ek != kx.ek || !bytes.Equal(got.message, kx.message) || got.regID != kx.regID {
			t.Errorf("%s: round trip gave %+v", v, got)
		}
		for cut := 0; cut < len(b); cut++ {
			if _, err := parseKeyExchange(v, b[:cut]); err == nil {
				t.Errorf("%s: truncated to %d parsed", v, cut)
			}
		}
	}
	// V03 without one-time prekey (libsignal allows it).
	kx := keyExchange{spkID: 3, ik: key32of(2), ek: key32of(3), message: []byte("inner")}
	got, err := parseKeyExchange(V03, appendKeyExchange(nil, V03, &kx))
	if err != nil || got.hasPK {
		t.Errorf("no prekey: %+v %v", got, err)
	}
	// Field numbers of OMEMOKeyExchange (twomemo): pk_id=1 spk_id=2 ik=3 ek=4 message=5.
	want := "0811" + "1003" + "1a20" + hex.EncodeToString(kx.ik[:]) + "2220" + hex.EncodeToString(kx.ek[:]) + "2a05" + hex.EncodeToString([]byte("inner"))
	kx.pkID, kx.hasPK = 17, true
	if got := hex.EncodeToString(appendKeyExchange(nil, V2, &kx)); got != want {
		t.Errorf("V2 key exchange = %s, want %s", got, want)
	}
}

func TestAuthenticatedEncoding(t *testing.T) {
	mac := bytes.Repeat([]byte{7}, 16)
	b := appendAuthenticated(nil, mac, []byte("msg"))
	if hex.EncodeToString(b) != "0a10"+hex.EncodeToString(mac)+"1203"+hex.EncodeToString([]byte("msg")) {
		t.Errorf("encoded %x", b)
	}
	gm, gmsg, err := parseAuthenticated(b)
	if err != nil || !bytes.Equal(gm, mac) || string(gmsg) != "msg" {
		t.Errorf("round trip: %x %q %v", gm, gmsg, err)
	}
	for _, bad := range [][]byte{
		appendAuthenticated(nil, mac[:8], []byte("msg")),
		appendBytes(nil, 1, mac),
		appendBytes(nil, 2, []byte("msg")),
		b[:len(b)-1],
	} {
		if _, _, err := parseAuthenticated(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%x: got %v", bad, err)
		}
	}
}

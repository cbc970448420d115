package omemo

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Wire framing of the two versions, encoded by hand. Parsers skip unknown
// fields of the four ordinary wire types, reject groups and invalid types,
// truncated fields and oversize values, and require the fields the
// reference implementations mark required.

const (
	version03    = 0x33
	maxProtoSize = 1 << 16
	maxCipher    = 1 << 15
)

// ratchetMessage is OMEMOMessage (V2) / SignalMessage (V03).
type ratchetMessage struct {
	dh         [32]byte
	n, pn      uint32
	ciphertext []byte
}

// keyExchange is OMEMOKeyExchange (V2) / PreKeySignalMessage (V03). ik and
// ek are raw 32-byte keys (ik Ed25519 for V2, Curve25519 for V03).
type keyExchange struct {
	pkID    uint32
	hasPK   bool
	spkID   uint32
	ik, ek  [32]byte
	message []byte // authenticated message (V2) / whole SignalMessage (V03)
	regID   uint32 // V03 only
}

func malformed(what string) error { return fmt.Errorf("%w: %s", ErrMalformed, what) }

// protoField reads one field header and value. For varints v is set, for
// length-delimited fields b; fixed-size fields are skipped.
func protoField(buf []byte) (num protowire.Number, typ protowire.Type, v uint64, b []byte, n int, err error) {
	num, typ, n = protowire.ConsumeTag(buf)
	if n < 0 {
		return 0, 0, 0, nil, 0, malformed("protobuf tag")
	}
	rest := buf[n:]
	var m int
	switch typ {
	case protowire.VarintType:
		v, m = protowire.ConsumeVarint(rest)
	case protowire.BytesType:
		b, m = protowire.ConsumeBytes(rest)
	case protowire.Fixed32Type:
		_, m = protowire.ConsumeFixed32(rest)
	case protowire.Fixed64Type:
		_, m = protowire.ConsumeFixed64(rest)
	default:
		return 0, 0, 0, nil, 0, malformed("protobuf wire type")
	}
	if m < 0 {
		return 0, 0, 0, nil, 0, malformed("truncated protobuf field")
	}
	return num, typ, v, b, n + m, nil
}

func wantType(got, want protowire.Type) error {
	if got != want {
		return malformed("protobuf field type")
	}
	return nil
}

func u32(v uint64) (uint32, error) {
	if v > 0xFFFFFFFF {
		return 0, malformed("protobuf value out of range")
	}
	return uint32(v), nil
}

// pubKey decodes a public key field: 33 bytes with 0x05 for V03, 32 for V2.
func pubKey(v Version, b []byte, dst *[32]byte) error {
	if v == V03 {
		if len(b) != 33 || b[0] != 0x05 {
			return malformed("key length")
		}
		b = b[1:]
	} else if len(b) != 32 {
		return malformed("key length")
	}
	copy(dst[:], b)
	return nil
}

func appendPubKey(dst []byte, v Version, num protowire.Number, k *[32]byte) []byte {
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	if v == V03 {
		dst = protowire.AppendVarint(dst, 33)
		dst = append(dst, 0x05)
		return append(dst, k[:]...)
	}
	dst = protowire.AppendVarint(dst, 32)
	return append(dst, k[:]...)
}

func appendUint(dst []byte, num protowire.Number, v uint32) []byte {
	dst = protowire.AppendTag(dst, num, protowire.VarintType)
	return protowire.AppendVarint(dst, uint64(v))
}

func appendBytes(dst []byte, num protowire.Number, b []byte) []byte {
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	return protowire.AppendBytes(dst, b)
}

// Field numbers of the ratchet message: V03 dh=1 n=2 pn=3 ct=4; V2 n=1 pn=2 dh=3 ct=4.
func msgFields(v Version) (dh, n, pn protowire.Number) {
	if v == V03 {
		return 1, 2, 3
	}
	return 3, 1, 2
}

// appendRatchetMessage encodes m without version byte or MAC. All fields
// are written even when zero: twomemo declares them required.
func appendRatchetMessage(dst []byte, v Version, m *ratchetMessage) []byte {
	return append(appendRatchetHead(dst, v, m, len(m.ciphertext)), m.ciphertext...)
}

// appendRatchetHead encodes m up to and including the ciphertext's tag and
// length ctLen, so the ciphertext can be written straight after it.
func appendRatchetHead(dst []byte, v Version, m *ratchetMessage, ctLen int) []byte {
	fdh, fn, fpn := msgFields(v)
	if v == V03 {
		dst = appendPubKey(dst, v, fdh, &m.dh)
		dst = appendUint(dst, fn, m.n)
		dst = appendUint(dst, fpn, m.pn)
	} else {
		dst = appendUint(dst, fn, m.n)
		dst = appendUint(dst, fpn, m.pn)
		dst = appendPubKey(dst, v, fdh, &m.dh)
	}
	dst = protowire.AppendTag(dst, 4, protowire.BytesType)
	return protowire.AppendVarint(dst, uint64(ctLen))
}

func parseRatchetMessage(v Version, buf []byte) (*ratchetMessage, error) {
	var m ratchetMessage
	if err := parseRatchetMessageInto(v, buf, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// parseRatchetMessageInto is parseRatchetMessage into m, off the heap.
func parseRatchetMessageInto(v Version, buf []byte, m *ratchetMessage) error {
	if len(buf) > maxProtoSize {
		return malformed("message too large")
	}
	fdh, fn, fpn := msgFields(v)
	*m = ratchetMessage{}
	var seen uint8
	for len(buf) > 0 {
		num, typ, val, b, n, err := protoField(buf)
		if err != nil {
			return err
		}
		buf = buf[n:]
		switch num {
		case fdh:
			if err := wantType(typ, protowire.BytesType); err != nil {
				return err
			}
			if err := pubKey(v, b, &m.dh); err != nil {
				return err
			}
			seen |= 1
		case fn:
			if err := wantType(typ, protowire.VarintType); err != nil {
				return err
			}
			if m.n, err = u32(val); err != nil {
				return err
			}
			seen |= 2
		case fpn:
			if err := wantType(typ, protowire.VarintType); err != nil {
				return err
			}
			if m.pn, err = u32(val); err != nil {
				return err
			}
			seen |= 4
		case 4:
			if err := wantType(typ, protowire.BytesType); err != nil {
				return err
			}
			if len(b) > maxCipher {
				return malformed("ciphertext too large")
			}
			m.ciphertext = b
			seen |= 8
		}
	}
	// libsignal omits zero counters; twomemo always writes them.
	if seen&1 == 0 || seen&8 == 0 {
		return malformed("incomplete message")
	}
	return nil
}

// appendAuthenticated encodes OMEMOAuthenticatedMessage (V2).
func appendAuthenticated(dst, mac, message []byte) []byte {
	dst = appendBytes(dst, 1, mac)
	return appendBytes(dst, 2, message)
}

// parseAuthenticated decodes OMEMOAuthenticatedMessage (V2).
func parseAuthenticated(buf []byte) (mac, message []byte, err error) {
	if len(buf) > maxProtoSize {
		return nil, nil, malformed("message too large")
	}
	var seen uint8
	for len(buf) > 0 {
		num, typ, _, b, n, err := protoField(buf)
		if err != nil {
			return nil, nil, err
		}
		buf = buf[n:]
		switch num {
		case 1, 2:
			if err := wantType(typ, protowire.BytesType); err != nil {
				return nil, nil, err
			}
			if num == 1 {
				mac = b
				seen |= 1
			} else {
				message = b
				seen |= 2
			}
		}
	}
	if seen != 3 || len(mac) != profile2.macLen {
		return nil, nil, malformed("authenticated message")
	}
	return mac, message, nil
}

// Field numbers of the key exchange: V03 pk=1 ek=2 ik=3 msg=4 reg=5 spk=6;
// V2 pk=1 spk=2 ik=3 ek=4 msg=5.
func kexFields(v Version) (pk, spk, ik, ek, msg protowire.Number) {
	if v == V03 {
		return 1, 6, 3, 2, 4
	}
	return 1, 2, 3, 4, 5
}

// appendKeyExchange encodes the key exchange (V03 without version byte).
func appendKeyExchange(dst []byte, v Version, k *keyExchange) []byte {
	fpk, fspk, fik, fek, fmsg := kexFields(v)
	if v == V03 {
		dst = appendUint(dst, 5, k.regID)
	}
	if k.hasPK || v == V2 {
		dst = appendUint(dst, fpk, k.pkID)
	}
	dst = appendUint(dst, fspk, k.spkID)
	dst = appendPubKey(dst, v, fik, &k.ik)
	dst = appendPubKey(dst, v, fek, &k.ek)
	return appendBytes(dst, fmsg, k.message)
}

func parseKeyExchange(v Version, buf []byte) (*keyExchange, error) {
	if len(buf) > maxProtoSize {
		return nil, malformed("message too large")
	}
	fpk, fspk, fik, fek, fmsg := kexFields(v)
	var k keyExchange
	var seen uint8
	for len(buf) > 0 {
		num, typ, val, b, n, err := protoField(buf)
		if err != nil {
			return nil, err
		}
		buf = buf[n:]
		switch {
		case num == fpk || num == fspk || (v == V03 && num == 5):
			if err := wantType(typ, protowire.VarintType); err != nil {
				return nil, err
			}
			x, err := u32(val)
			if err != nil {
				return nil, err
			}
			switch num {
			case fpk:
				k.pkID, k.hasPK = x, true
				seen |= 1
			case fspk:
				k.spkID = x
				seen |= 2
			default:
				k.regID = x
			}
		case num == fik || num == fek:
			if err := wantType(typ, protowire.BytesType); err != nil {
				return nil, err
			}
			if num == fik {
				err = pubKey(v, b, &k.ik)
				seen |= 4
			} else {
				err = pubKey(v, b, &k.ek)
				seen |= 8
			}
			if err != nil {
				return nil, err
			}
		case num == fmsg:
			if err := wantType(typ, protowire.BytesType); err != nil {
				return nil, err
			}
			k.message = b
			seen |= 16
		}
	}
	// Proto3 encoders omit zero ids, so only keys and message are required;
	// OMEMO 2 always uses a one-time prekey.
	if v == V2 {
		k.hasPK = true
	}
	const need = 4 | 8 | 16
	if seen&need != need {
		return nil, malformed("incomplete key exchange")
	}
	return &k, nil
}

package aesgcm

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"
)

// Files are decrypted as they are downloaded, without holding the whole
// file in memory: the standard library's GCM only opens a complete
// message, so this is AES-GCM decryption (NIST SP 800-38D) as a stream —
// CTR with GCM's 32-bit counter, and GHASH over the ciphertext with a
// 4-bit table (Shoup's method). The tag is checked at Close: what was
// written before is unauthenticated and must be thrown away when Close
// fails (the bridge writes it to a temporary file).

// Decrypter decrypts ciphertext written to it (the tag last, as the file
// is uploaded) into w. Close verifies the tag.
type Decrypter struct {
	gcmStream
	w    io.Writer
	held []byte // the last up to TagSize bytes: possibly the tag
}

// gcmStream is the state both directions share: the CTR keystream and the
// GHASH of the ciphertext.
type gcmStream struct {
	block   cipher.Block
	counter [16]byte
	ekj0    [16]byte
	ghash   ghash
	ks      [16]byte
	ksUsed  int
	partial []byte // ciphertext bytes not yet a whole GHASH block
	n       uint64 // ciphertext bytes
	buf     []byte
}

// NewDecrypter returns a Decrypter for k writing plaintext to w.
func NewDecrypter(k Key, w io.Writer) (*Decrypter, error) {
	g, err := newGCMStream(k)
	if err != nil {
		return nil, err
	}
	return &Decrypter{gcmStream: *g, w: w}, nil
}

// Encrypter encrypts plaintext written to it into w; Close writes the tag.
// The result is what Seal gives for the whole plaintext.
type Encrypter struct {
	gcmStream
	w io.Writer
}

// NewEncrypter returns an Encrypter for k writing the file to w.
func NewEncrypter(k Key, w io.Writer) (*Encrypter, error) {
	g, err := newGCMStream(k)
	if err != nil {
		return nil, err
	}
	return &Encrypter{gcmStream: *g, w: w}, nil
}

// Write implements io.Writer.
func (e *Encrypter) Write(p []byte) (int, error) {
	ct := e.xor(p)
	e.hash(ct)
	if _, err := e.w.Write(ct); err != nil {
		return 0, fmt.Errorf("aesgcm: %w", err)
	}
	return len(p), nil
}

// Close writes the tag.
func (e *Encrypter) Close() error {
	tag := e.tag()
	if _, err := e.w.Write(tag[:]); err != nil {
		return fmt.Errorf("aesgcm: %w", err)
	}
	return nil
}

func newGCMStream(k Key) (*gcmStream, error) {
	if len(k.Key) != KeySize {
		return nil, fmt.Errorf("%w: key of %d bytes", ErrBadFragment, len(k.Key))
	}
	if len(k.IV) != IVSize && len(k.IV) != LegacyIVSize {
		return nil, fmt.Errorf("%w: IV of %d bytes", ErrBadFragment, len(k.IV))
	}
	block, err := aes.NewCipher(k.Key)
	if err != nil {
		return nil, fmt.Errorf("aesgcm: %w", err)
	}
	d := &gcmStream{block: block, ksUsed: 16}
	var h [16]byte
	block.Encrypt(h[:], h[:])
	d.ghash.init(h)
	var j0 [16]byte
	if len(k.IV) == IVSize {
		copy(j0[:], k.IV)
		j0[15] = 1
	} else {
		// J0 = GHASH(IV ‖ 0-padding ‖ [0]64 ‖ [len(IV) in bits]64).
		var g ghash
		g.init(h)
		g.update(k.IV)
		var lens [16]byte
		binary.BigEndian.PutUint64(lens[8:], uint64(len(k.IV))*8)
		g.update(lens[:])
		j0 = g.sum()
	}
	block.Encrypt(d.ekj0[:], j0[:])
	d.counter = j0
	inc32(&d.counter)
	return d, nil
}

func inc32(c *[16]byte) {
	binary.BigEndian.PutUint32(c[12:], binary.BigEndian.Uint32(c[12:])+1)
}

// Write implements io.Writer.
func (d *Decrypter) Write(p []byte) (int, error) {
	d.held = append(d.held, p...)
	if len(d.held) <= TagSize {
		return len(p), nil
	}
	ct := d.held[:len(d.held)-TagSize]
	if err := d.decrypt(ct); err != nil {
		return 0, err
	}
	d.held = append(d.held[:0], d.held[len(d.held)-TagSize:]...)
	return len(p), nil
}

// decrypt hashes and decrypts ciphertext ct into w.
func (d *Decrypter) decrypt(ct []byte) error {
	d.hash(ct)
	if _, err := d.w.Write(d.xor(ct)); err != nil {
		return fmt.Errorf("aesgcm: %w", err)
	}
	return nil
}

// hash adds ciphertext to GHASH, in whole blocks (the rest waits).
func (g *gcmStream) hash(ct []byte) {
	g.n += uint64(len(ct))
	g.partial = append(g.partial, ct...)
	whole := len(g.partial) &^ 15
	g.ghash.update(g.partial[:whole])
	g.partial = append(g.partial[:0], g.partial[whole:]...)
}

// xor applies the keystream to p, into a buffer reused by the next call.
func (g *gcmStream) xor(p []byte) []byte {
	if cap(g.buf) < len(p) {
		g.buf = make([]byte, len(p))
	}
	out := g.buf[:len(p)]
	for i := range p {
		if g.ksUsed == 16 {
			g.block.Encrypt(g.ks[:], g.counter[:])
			inc32(&g.counter)
			g.ksUsed = 0
		}
		out[i] = p[i] ^ g.ks[g.ksUsed]
		g.ksUsed++
	}
	return out
}

// tag finishes GHASH and returns the tag.
func (g *gcmStream) tag() [16]byte {
	g.ghash.update(g.partial) // zero-padded by update
	var lens [16]byte
	binary.BigEndian.PutUint64(lens[8:], g.n*8)
	g.ghash.update(lens[:])
	s := g.ghash.sum()
	for i := range s {
		s[i] ^= g.ekj0[i]
	}
	return s
}

// Close checks the tag. ErrShort when fewer than TagSize bytes were
// written, ErrDecrypt when the tag does not match: then everything written
// to w must be discarded.
func (d *Decrypter) Close() error {
	if len(d.held) < TagSize {
		return fmt.Errorf("%w (%d bytes)", ErrShort, uint64(len(d.held))+d.n)
	}
	s := d.tag()
	if subtle.ConstantTimeCompare(s[:], d.held) != 1 {
		return ErrDecrypt
	}
	return nil
}

// ghash is GHASH over GF(2^128) with a 4-bit product table of H.
type ghash struct {
	table [16][2]uint64 // multiples of H, indexed by bit-reversed nibble
	y     [2]uint64     // high, low
}

// reduce4 is the reduction of the 4 bits shifted out of a field element.
var reduce4 = [16]uint64{
	0x0000, 0x1c20, 0x3840, 0x2460, 0x7080, 0x6ca0, 0x48c0, 0x54e0,
	0xe100, 0xfd20, 0xd940, 0xc560, 0x9180, 0x8da0, 0xa9c0, 0xb5e0,
}

func rev4(i int) int {
	return (i&1)<<3 | (i&2)<<1 | (i&4)>>1 | (i&8)>>3
}

func (g *ghash) init(h [16]byte) {
	// Elements are held as (low, high) with the bit order GHASH uses: the
	// first byte's first bit is x^0.
	x := [2]uint64{binary.BigEndian.Uint64(h[:8]), binary.BigEndian.Uint64(h[8:])}
	g.table[rev4(1)] = x
	for i := 2; i < 16; i += 2 {
		g.table[rev4(i)] = double(g.table[rev4(i/2)])
		t := g.table[rev4(i)]
		g.table[rev4(i+1)] = [2]uint64{t[0] ^ x[0], t[1] ^ x[1]}
	}
	g.y = [2]uint64{}
}

// double multiplies by x (a right shift in GHASH's bit order).
func double(v [2]uint64) [2]uint64 {
	msb := v[1]&1 == 1
	out := [2]uint64{v[0] >> 1, v[1]>>1 | v[0]<<63}
	if msb {
		out[0] ^= 0xe100000000000000
	}
	return out
}

// mul sets y = y·H.
func (g *ghash) mul() {
	var z [2]uint64
	for i := 0; i < 2; i++ {
		word := g.y[1-i]
		for j := 0; j < 64; j += 4 {
			msw := z[1] & 0xf
			z[1] = z[1]>>4 | z[0]<<60
			z[0] = z[0]>>4 ^ reduce4[msw]<<48
			t := g.table[word&0xf]
			z[0] ^= t[0]
			z[1] ^= t[1]
			word >>= 4
		}
	}
	g.y = z
}

// update hashes b, the last block zero-padded.
func (g *ghash) update(b []byte) {
	for len(b) > 0 {
		var blk [16]byte
		n := copy(blk[:], b)
		b = b[n:]
		g.y[0] ^= binary.BigEndian.Uint64(blk[:8])
		g.y[1] ^= binary.BigEndian.Uint64(blk[8:])
		g.mul()
	}
}

func (g *ghash) sum() [16]byte {
	var out [16]byte
	binary.BigEndian.PutUint64(out[:8], g.y[0])
	binary.BigEndian.PutUint64(out[8:], g.y[1])
	return out
}

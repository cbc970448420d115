package omemo

import (
	"context"
	"fmt"
	"math/rand"
	"testing"
)

type inflight struct {
	from, to *peer
	enc      *Encrypted
	body     string
	done     bool
}

// TestRandomInterleavings sends and delivers messages between two devices in
// random order, with replays, and checks every message decrypts exactly once
// with its own plaintext and every replay fails.
func TestRandomInterleavings(t *testing.T) {
	for _, seed := range []int64{1, 2, 3, 4, 5} {
		forBoth(t, func(t *testing.T, v Version) {
			t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
				interleave(t, v, rand.New(rand.NewSource(seed)), 400)
			})
		})
	}
}

func interleave(t *testing.T, v Version, rnd *rand.Rand, steps int) {
	ctx := context.Background()
	a := newPeer(t, "alice@example.org", Options{Rand: rnd})
	b := newPeer(t, "bob@example.org", Options{Rand: rnd})
	var pending, delivered []*inflight
	started := false
	sendOne := func(from, to *peer) {
		body := fmt.Sprintf("%s→%s #%d", from.jid[:1], to.jid[:1], len(pending)+len(delivered))
		var pt []byte
		if rnd.Intn(10) > 0 {
			pt = []byte(body)
		} else {
			body = "" // empty message
		}
		r := Recipient{Address: to.addr()}
		if !started {
			r.Bundle = to.bundle(t, v)
		}
		enc, errs, err := from.m.Encrypt(ctx, v, pt, []Recipient{r})
		if err != nil {
			t.Fatalf("encrypt: %v %v", err, errs)
		}
		pending = append(pending, &inflight{from: from, to: to, enc: enc, body: body})
	}
	deliver := func(m *inflight) {
		d, err := m.to.m.Decrypt(ctx, m.enc, m.from.jid)
		if m.done {
			if err == nil {
				t.Fatalf("replay of %q decrypted", m.body)
			}
			return
		}
		if err != nil {
			t.Fatalf("decrypt %q: %v", m.body, err)
		}
		if got := string(d.Plaintext); got != m.body || (m.body == "") != (d.Plaintext == nil) {
			t.Fatalf("decrypted %q, want %q", got, m.body)
		}
		m.done = true
	}
	// a starts; b can only send once it has heard from a.
	sendOne(a, b)
	started = true
	bKnows := false
	for range steps {
		switch r := rnd.Intn(10); {
		case r < 3:
			sendOne(a, b)
		case r < 5 && bKnows:
			sendOne(b, a)
		case r < 9 && len(pending) > 0:
			i := rnd.Intn(len(pending))
			m := pending[i]
			pending = append(pending[:i], pending[i+1:]...)
			deliver(m)
			delivered = append(delivered, m)
			if m.to == b {
				bKnows = true
			}
		case len(delivered) > 0:
			deliver(delivered[rnd.Intn(len(delivered))])
		}
	}
	rnd.Shuffle(len(pending), func(i, j int) { pending[i], pending[j] = pending[j], pending[i] })
	for _, m := range pending {
		deliver(m)
		delivered = append(delivered, m)
	}
	t.Logf("%d messages, each decrypted once", len(delivered))
	for _, m := range delivered {
		if !m.done {
			t.Fatalf("%q never decrypted", m.body)
		}
	}
}

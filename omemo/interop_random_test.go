package omemo_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/mxomemo/xmpp-bridge/omemo"
)

// TestInteropRandomInterleaving: random sends both ways with random delivery
// order and delays, across many DH ratchet steps; every message decrypts
// exactly once on the other side, replays are refused.
func TestInteropRandomInterleaving(t *testing.T) {
	forVersions(t, func(t *testing.T, v omemo.Version) {
		const steps = 160
		seed := uint64(0x5eed) + uint64(v)
		if e := os.Getenv("OMEMO_INTEROP_SEED"); e != "" {
			n, err := strconv.ParseUint(e, 10, 64)
			if err != nil {
				t.Fatalf("OMEMO_INTEROP_SEED: %v", err)
			}
			seed = n
		}
		r := rand.New(rand.NewPCG(seed, 42))
		t.Logf("seed %d", seed)
		s := establish(t, v)
		type msg struct {
			n    int
			body string
			xml  string
		}
		var toPy, toUs, doneToPy, doneToUs []msg
		sent := 0
		take := func(q *[]msg) msg {
			i := r.IntN(len(*q))
			m := (*q)[i]
			*q = append((*q)[:i], (*q)[i+1:]...)
			return m
		}
		deliverToPy := func(m msg) {
			t.Helper()
			s.pyDecryptBody(m.xml, m.body)
			doneToPy = append(doneToPy, m)
		}
		deliverToUs := func(m msg) {
			t.Helper()
			d, err := s.decrypt(m.xml)
			if err != nil {
				t.Fatalf("message %d to us: %v", m.n, err)
			}
			if got := s.body(d); got != m.body {
				t.Fatalf("message %d to us decrypted to %q", m.n, got)
			}
			doneToUs = append(doneToUs, m)
		}
		for step := 0; step < steps; step++ {
			switch k := r.IntN(10); {
			case k < 3:
				sent++
				b := fmt.Sprintf("us #%d", sent)
				_, x := s.send(b, nil)
				toPy = append(toPy, msg{sent, b, x})
			case k < 6:
				sent++
				b := fmt.Sprintf("python #%d", sent)
				toUs = append(toUs, msg{sent, b, s.pyEncrypt(b)})
			case k < 8 && len(toPy) > 0:
				deliverToPy(take(&toPy))
			case len(toUs) > 0:
				deliverToUs(take(&toUs))
			}
		}
		for len(toPy) > 0 {
			deliverToPy(take(&toPy))
		}
		for len(toUs) > 0 {
			deliverToUs(take(&toUs))
		}
		for _, m := range s.pyOutbox() {
			if d := s.mustDecrypt(m.XML); d.Plaintext != nil {
				t.Errorf("python's automatic message decrypted to %q", d.Plaintext)
			}
		}
		t.Logf("%d messages to python, %d to us", len(doneToPy), len(doneToUs))
		// Replays are refused. The engine remembers the last few receiving
		// chains (like libsignal's five): a replay on one of them is
		// ErrDuplicate; an older chain is unknown, so it fails as ErrBadMAC.
		for i := 0; i < 12; i++ {
			m := doneToUs[r.IntN(len(doneToUs))]
			if _, err := s.decrypt(m.xml); err == nil {
				t.Errorf("replay of message %d to us decrypted again", m.n)
			} else if !errors.Is(err, omemo.ErrDuplicate) {
				if !errors.Is(err, omemo.ErrBadMAC) {
					t.Errorf("replay of message %d to us: %v, want ErrDuplicate or (old chain) ErrBadMAC", m.n, err)
				}
				t.Logf("replay of message %d (an old chain) refused as: %v", m.n, err)
			}
			p := doneToPy[r.IntN(len(doneToPy))]
			s.py.fails("decrypt", map[string]any{"xml": p.xml, "from": ourJID})
		}
		// Still in step.
		s.pyDecryptBody(func() string { _, x := s.send("final from us", nil); return x }(), "final from us")
		final := s.pyEncrypt("final from python")
		if got := s.body(s.mustDecrypt(final)); got != "final from python" {
			t.Errorf("final: %q", got)
		}
		if _, err := s.decrypt(final); !errors.Is(err, omemo.ErrDuplicate) {
			t.Errorf("replay of the latest message: %v, want ErrDuplicate", err)
		}
	})
}

package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/e2e/internal/xmpptap"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

// The burst-tap rows of BenchmarkSinkThroughput: the bridge's XMPP connection goes through a
// BENCHMARK-ONLY tap (e2e/internal/xmpptap) to the real Prosody, which serves the login, the
// roster, PEP and OMEMO, the rooms and every IQ; in these phases only the burst's messages
// bypass it. XMPP → Matrix: the sender's stanzas, built (OMEMO: encrypted) before the clock,
// readdressed as Prosody delivers them (from the sender's full JID or its occupant JID, to the
// account or the bridge's full JID, with a stanza-id by the archive's owner), are injected
// straight into the bridge's inbound stream. Matrix → XMPP: the bridge's messages to the
// receiver are taken out of its outbound stream (a room's reflection of each, as Prosody would
// send it, injected back), timed when the tap reads them, and checked (OMEMO: decrypted) after
// the clock. The figures are then the bridge's own work, Prosody's per-message CPU off the
// shared cores: its ceiling.

// startTap starts the tap in front of prosody's direct TLS port (MXOMEMO_SINK_TAP=0: none,
// and no burst-tap rows).
func startTap(b *testing.B, prosody *testenv.Prosody) *xmpptap.Tap {
	if os.Getenv("MXOMEMO_SINK_TAP") == "0" {
		return nil
	}
	pem, err := os.ReadFile(prosody.CertFile())
	if err != nil {
		b.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		b.Fatalf("no certificate in %s", prosody.CertFile())
	}
	tap, err := xmpptap.Start(prosody.DirectTLSAddr(), "localhost", roots)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(tap.Close)
	return tap
}

// tapRun drives the burst-tap phases; its functions are the benchmark's.
type tapRun struct {
	tap     *xmpptap.Tap
	account string // the bridge's bare JID
	pid     int
	nextIDs func(prefix string, n int) (ids, bodies []string)
	// arrivals is the bodies the sink received from index k on, in order, and the next k.
	arrivals    func(k int) ([]string, int)
	waitArrived func(bodies []string, d time.Duration)
	arrivedAt   func(bodies []string) []time.Time
	push        func(c *sinkCase, bodies []string) time.Time
}

// stanzaID is the XEP-0359 stanza-id Prosody's archive adds to what it delivers.
func stanzaID(id, by string) string {
	return fmt.Sprintf(`<stanza-id xmlns="urn:xmpp:sid:0" id="tap-%s" by=%q/>`, id, by)
}

// xm injects n messages of c and waits for all of them in the sink.
func (r *tapRun) xm(ctx context.Context, b *testing.B, c *sinkCase, n int) (lat []time.Duration, wall time.Duration, cpu float64) {
	ids, bodies := r.nextIDs("xm-tap", n)
	raws := c.raw(ctx, b, ids, bodies)
	// A 1:1 message keeps the bare JID it was sent to; a room's goes to each occupant's full JID.
	to, by := r.account, r.account
	if c.room != "" {
		to, by = r.tap.BoundJID(), c.room
	}
	for i := range raws {
		raws[i] = xmpptap.Readdress(raws[i], c.tapFrom, to, stanzaID(ids[i], by))
	}
	conns := r.tap.Connections()
	_, k := r.arrivals(0)
	sent := make([]time.Time, n)
	cpu0 := procCPU(b, r.pid)
	start := time.Now()
	for i, raw := range raws {
		sent[i] = time.Now()
		if err := r.tap.Inject(raw); err != nil {
			b.Fatal(err)
		}
	}
	r.waitArrived(bodies, 5*time.Minute)
	cpu = (procCPU(b, r.pid) - cpu0) / float64(n)
	got, _ := r.arrivals(k)
	var mine []string
	for _, a := range got {
		if strings.HasPrefix(a, "xm-tap ") {
			mine = append(mine, a)
		}
	}
	if !slices.Equal(mine, bodies) {
		b.Fatalf("%s: the sink got %d injected messages, want %d once each in order", c.name, len(mine), n)
	}
	r.check(b, conns)
	var last time.Time
	for i, at := range r.arrivedAt(bodies) {
		lat = append(lat, at.Sub(sent[i]))
		if at.After(last) {
			last = at
		}
	}
	return lat, last.Sub(start), cpu
}

// check fails the run if the tap reconnected or failed (a resumption after injecting or
// swallowing is not translated, so its figures would not count).
func (r *tapRun) check(b *testing.B, conns int) {
	if err := r.tap.Err(); err != nil {
		b.Fatalf("tap: %v", err)
	}
	if got := r.tap.Connections(); got != conns {
		b.Fatalf("the bridge reconnected through the tap during the phase (%d connections, was %d)", got, conns)
	}
}

type tapped struct {
	raw []byte
	at  time.Time
}

// mx pushes n Matrix events to c's portal and takes the bridge's messages to c's receiver out
// of its stream; for a room, the room's reflection of each is injected back.
func (r *tapRun) mx(ctx context.Context, b *testing.B, c *sinkCase, n int) (lat []time.Duration, wall time.Duration, cpu float64) {
	_, bodies := r.nextIDs("mx-tap", n)
	from := r.tap.BoundJID()
	if c.room != "" {
		from = c.room + "/" + bridgeNick(b, c)
	}
	var (
		mu   sync.Mutex
		got  []tapped
		more = make(chan struct{}, 1)
	)
	reflect := make(chan []byte, n+64)
	stop, reflected := make(chan struct{}), make(chan int, 1)
	go func() {
		k := 0
		defer func() { reflected <- k }()
		for {
			select {
			case raw := <-reflect:
				// Prosody's reflection keeps the id and origin-id, adds the room's stanza-id.
				if err := r.tap.Inject(xmpptap.Readdress(raw, from, r.tap.BoundJID(), stanzaID(fmt.Sprint("r", k), c.room))); err != nil {
					return
				}
				k++
			case <-stop:
				return
			}
		}
	}()
	match := func(raw []byte) bool {
		to := xmpptap.Attr(raw, "to")
		return (to == c.capTo || strings.HasPrefix(to, c.capTo+"/")) &&
			(bytes.Contains(raw, []byte("<body")) || bytes.Contains(raw, []byte("<encrypted")))
	}
	r.tap.Capture(match, func(raw []byte, at time.Time) {
		mu.Lock()
		got = append(got, tapped{raw, at})
		mu.Unlock()
		if c.room != "" {
			select {
			case reflect <- raw:
			default:
			}
		}
		select {
		case more <- struct{}{}:
		default:
		}
	})
	conns := r.tap.Connections()
	sent := make([]time.Time, n)
	cpu0 := procCPU(b, r.pid)
	start := time.Now()
	for i := 0; i < n; i += 50 {
		at := r.push(c, bodies[i:min(n, i+50)])
		for j := i; j < min(n, i+50); j++ {
			sent[j] = at
		}
	}
	deadline := time.After(5 * time.Minute)
	for {
		mu.Lock()
		k := len(got)
		mu.Unlock()
		if k >= n {
			break
		}
		select {
		case <-more:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			b.Fatalf("%s: %d of %d Matrix messages left the bridge", c.name, k, n)
		}
	}
	cpu = (procCPU(b, r.pid) - cpu0) / float64(n)
	// Nothing more is taken: anything the bridge sends now goes to Prosody and the receiver.
	r.tap.Capture(nil, nil)
	if c.room != "" {
		// The reflections are the bridge's work too, but after its last message left.
		for deadline := time.Now().Add(time.Minute); len(reflect) > 0 && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
	}
	close(stop)
	<-reflected
	r.check(b, conns)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != n {
		b.Fatalf("%s: the bridge sent %d messages, want %d", c.name, len(got), n)
	}
	ms := make([]harness.ReceivedMessage, len(got))
	for i, t := range got {
		m, err := harness.ParseMessage(t.raw)
		if err != nil {
			b.Fatal(err)
		}
		// The server stamps from; the tap read them before it could.
		m.From, m.At = from, t.at
		if !c.fromBridge(m) {
			b.Fatalf("%s: the bridge's message %d is not what the case expects (type %q, OMEMO %v)", c.name, i, m.Type, m.OMEMO != nil)
		}
		ms[i] = m
	}
	plain := c.bodies(ctx, b, ms)
	if !slices.Equal(plain, bodies) {
		b.Fatalf("%s: the bridge's %d messages are not the %d events once each in order", c.name, len(plain), n)
	}
	for i := range ms {
		lat = append(lat, ms[i].At.Sub(sent[i]))
	}
	return lat, got[len(got)-1].at.Sub(start), cpu
}

// bridgeNick is the bridge's nick in c's room, from a message of the bridge the receiver got
// there in the phases before.
func bridgeNick(b *testing.B, c *sinkCase) string {
	for _, m := range slices.Backward(c.receiver.Received()) {
		if c.fromBridge(m) {
			return strings.TrimPrefix(m.From, c.room+"/")
		}
	}
	b.Fatalf("%s: no message of the bridge's in the room yet", c.name)
	return ""
}

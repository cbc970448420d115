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
	pushE       func(c *sinkCase, bodies []string) (time.Time, error)
}

// stanzaID is the XEP-0359 stanza-id Prosody's archive adds to what it delivers.
func stanzaID(id, by string) string {
	return fmt.Sprintf(`<stanza-id xmlns="urn:xmpp:sid:0" id="tap-%s" by=%q/>`, id, by)
}

// xm injects n messages of c and waits for all of them in the sink.
func (r *tapRun) xm(ctx context.Context, b *testing.B, c *sinkCase, n int) ([]time.Duration, time.Duration, float64) {
	return r.xmAll(ctx, b, []*sinkCase{c}, n)
}

// xmAll injects n messages spread over the chats cs, one of each in turn, and waits for all of
// them in the sink. They are encrypted one at a time in that order (each chat prepared once):
// chats of one sender share its OMEMO chain, which the bridge then reads in order as from
// Prosody.
func (r *tapRun) xmAll(ctx context.Context, b *testing.B, cs []*sinkCase, n int) (lat []time.Duration, wall time.Duration, cpu float64) {
	raws := make([][]byte, n)
	bodies := make([]string, n)
	perCase := make([][]string, len(cs))
	build := make([]func(id, body string) []byte, len(cs))
	for j, c := range cs {
		build[j] = c.raw(ctx, b)
	}
	for i := range n {
		j := i % len(cs)
		c := cs[j]
		ids, bs := r.nextIDs("xt-"+c.name, 1)
		// A 1:1 message keeps the bare JID it was sent to; a room's goes to each occupant's full JID.
		to, by := r.account, r.account
		if c.room != "" {
			to, by = r.tap.BoundJID(), c.room
		}
		raws[i] = xmpptap.Readdress(build[j](ids[0], bs[0]), c.tapFrom, to, stanzaID(ids[0], by))
		bodies[i] = bs[0]
		perCase[j] = append(perCase[j], bs[0])
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
	for j, c := range cs {
		var mine []string
		for _, a := range got {
			if strings.HasPrefix(a, "xt-"+c.name+" ") {
				mine = append(mine, a)
			}
		}
		if !slices.Equal(mine, perCase[j]) {
			b.Fatalf("%s: the sink got %d injected messages, want %d once each in order", c.name, len(mine), len(perCase[j]))
		}
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
	c   int // the case's index
	raw []byte
	at  time.Time
}

// mx pushes n Matrix events to c's portal and takes the bridge's messages to c's receiver out
// of its stream.
func (r *tapRun) mx(ctx context.Context, b *testing.B, c *sinkCase, n int) ([]time.Duration, time.Duration, float64) {
	return r.mxAll(ctx, b, []*sinkCase{c}, n)
}

// mxAll pushes n Matrix events spread over the portals of cs (each portal's in transactions of
// 50, one at a time, the portals at once) and takes the bridge's messages to the cases'
// receivers out of its stream; for a room, the room's reflection of each is injected back.
func (r *tapRun) mxAll(ctx context.Context, b *testing.B, cs []*sinkCase, n int) (lat []time.Duration, wall time.Duration, cpu float64) {
	bodies := make([][]string, len(cs))
	from := make([]string, len(cs))
	for j, c := range cs {
		_, bodies[j] = r.nextIDs("mt-"+c.name, n/len(cs)+min(1, max(0, n%len(cs)-j)))
		from[j] = r.tap.BoundJID()
		if c.room != "" {
			from[j] = c.room + "/" + bridgeNick(b, c)
		}
	}
	var (
		mu   sync.Mutex
		got  []tapped
		more = make(chan struct{}, 1)
	)
	type reflection struct {
		c   int
		raw []byte
	}
	reflect := make(chan reflection, n+64)
	stop, reflected := make(chan struct{}), make(chan int, 1)
	go func() {
		k := 0
		defer func() { reflected <- k }()
		for {
			select {
			case rf := <-reflect:
				// Prosody's reflection keeps the id and origin-id, adds the room's stanza-id.
				room := cs[rf.c].room
				if err := r.tap.Inject(xmpptap.Readdress(rf.raw, from[rf.c], r.tap.BoundJID(), stanzaID(fmt.Sprint("r", k), room))); err != nil {
					return
				}
				k++
			case <-stop:
				return
			}
		}
	}()
	caseOf := func(raw []byte) int {
		to := xmpptap.Attr(raw, "to")
		for j, c := range cs {
			if to == c.capTo || strings.HasPrefix(to, c.capTo+"/") {
				return j
			}
		}
		return -1
	}
	match := func(raw []byte) bool {
		return caseOf(raw) >= 0 && (bytes.Contains(raw, []byte("<body")) || bytes.Contains(raw, []byte("<encrypted")))
	}
	r.tap.Capture(match, func(raw []byte, at time.Time) {
		j := caseOf(raw)
		mu.Lock()
		got = append(got, tapped{j, raw, at})
		mu.Unlock()
		if cs[j].room != "" {
			select {
			case reflect <- reflection{j, raw}:
			default:
			}
		}
		select {
		case more <- struct{}{}:
		default:
		}
	})
	conns := r.tap.Connections()
	sent := make([]map[string]time.Time, len(cs))
	errs := make(chan error, len(cs))
	cpu0 := procCPU(b, r.pid)
	start := time.Now()
	for j, c := range cs {
		sent[j] = map[string]time.Time{}
		go func() {
			bs := bodies[j]
			for i := 0; i < len(bs); i += 50 {
				at, err := r.pushE(c, bs[i:min(len(bs), i+50)])
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for _, body := range bs[i:min(len(bs), i+50)] {
					sent[j][body] = at
				}
				mu.Unlock()
			}
			errs <- nil
		}()
	}
	for range cs {
		if err := <-errs; err != nil {
			b.Fatal(err)
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
			b.Fatalf("%d of %d Matrix messages left the bridge", k, n)
		}
	}
	cpu = (procCPU(b, r.pid) - cpu0) / float64(n)
	// Nothing more is taken: anything the bridge sends now goes to Prosody and the receivers.
	r.tap.Capture(nil, nil)
	// The reflections are the bridge's work too, but after its last message left.
	for deadline := time.Now().Add(time.Minute); len(reflect) > 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	<-reflected
	r.check(b, conns)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != n {
		b.Fatalf("the bridge sent %d messages, want %d", len(got), n)
	}
	// Checked in the order the bridge wrote them: one receiver device may decrypt several
	// cases' messages, from one chain.
	plain := make([][]string, len(cs))
	for i, t := range got {
		c := cs[t.c]
		m, err := harness.ParseMessage(t.raw)
		if err != nil {
			b.Fatal(err)
		}
		// The server stamps from; the tap read them before it could.
		m.From, m.At = from[t.c], t.at
		if !c.fromBridge(m) {
			b.Fatalf("%s: the bridge's message %d is not what the case expects (type %q, OMEMO %v)", c.name, i, m.Type, m.OMEMO != nil)
		}
		body := c.bodies(ctx, b, []harness.ReceivedMessage{m})[0]
		plain[t.c] = append(plain[t.c], body)
		lat = append(lat, t.at.Sub(sent[t.c][body]))
	}
	for j, c := range cs {
		if !slices.Equal(plain[j], bodies[j]) {
			b.Fatalf("%s: the bridge's %d messages are not the %d events once each in order", c.name, len(plain[j]), len(bodies[j]))
		}
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

//go:build integration

package sm_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/internal/testenv"
	"github.com/mxomemo/xmpp-bridge/xmpp/conn"
	"github.com/mxomemo/xmpp-bridge/xmpp/sm"
)

// BenchmarkStanzaAfterAck is the latency of a message to a stream
// management session sent right after the server answered the session's
// <r/>, with and without the quick ACK of that <a/> (quickack_linux.go), on
// a real Prosody (Nagle's algorithm on, its default). Without it the
// session's kernel delays the ACK of the <a/> (nothing is sent in answer),
// and Prosody holds the message until that ACK: up to the delayed-ACK
// timer's 40 ms. A stanza the server sent no <r/> with (its request
// outstanding) is the same case, seen in the sink benchmark's traces under
// load (docs/scaling.md); this reproduces the <a/>, which every session
// meets. It prints p50, p99 and max in ms (ms-p50, ms-p99, ms-max).
func BenchmarkStanzaAfterAck(b *testing.B) {
	srv := testenv.SharedProsody(b)
	a := jid.MustParse(srv.CreateAccount(b, "quickack-a", "pw-a"))
	peer := jid.MustParse(srv.CreateAccount(b, "quickack-b", "pw-b"))
	insecure := []string{srv.Domain()}
	ctx := context.Background()
	for _, quick := range []bool{false, true} {
		b.Run(fmt.Sprintf("quickack=%v", quick), func(b *testing.B) {
			prev := sm.SetQuickAck(quick)
			defer sm.SetQuickAck(prev)
			m := sm.New(sm.Options{AckEvery: 1000, AckInterval: time.Hour}) // requests only when asked
			sa, err := conn.Dial(ctx, conn.Config{JID: a, Password: "pw-a", Host: srv.Host(), Port: uint16(srv.Port()), InsecureTLSHosts: insecure, Timeout: 20 * time.Second, SM: m})
			if err != nil {
				b.Fatal(err)
			}
			defer sa.Close()
			sb, err := conn.Dial(ctx, conn.Config{JID: peer, Password: "pw-b", Host: srv.Host(), Port: uint16(srv.Port()), InsecureTLSHosts: insecure, Timeout: 20 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			defer sb.Close()
			inA := newInbox()
			serve(b, sa, m.Handler(inA.handler()))
			serve(b, sb, newInbox().handler())
			waitFor(b, "<enabled/>", func() bool { return m.Stats().Enabled == 1 })
			full := sa.LocalAddr()
			var lat []time.Duration
			b.ResetTimer()
			for i := range b.N {
				// A stanza of ours waits for its ack; we ask, the server answers.
				send(b, sa, peer, fmt.Sprintf("a2b-%d", i))
				if err := sa.Send(ctx, sm.Req{}.TokenReader()); err != nil {
					b.Fatal(err)
				}
				for m.Stats().Unacked != 0 {
					time.Sleep(100 * time.Microsecond)
				}
				body := fmt.Sprintf("b2a-%d", i)
				start := time.Now()
				send(b, sb, full, body)
				for got := ""; got != body; {
					select {
					case got = <-inA.ch:
					case <-time.After(30 * time.Second):
						b.Fatalf("%s never arrived", body)
					}
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			ms := func(q float64) float64 {
				return float64(lat[min(len(lat)-1, int(float64(len(lat))*q))]) / float64(time.Millisecond)
			}
			b.ReportMetric(ms(0.5), "ms-p50")
			b.ReportMetric(ms(0.99), "ms-p99")
			b.ReportMetric(ms(1), "ms-max")
		})
	}
}

package bridge

import (
	"context"
	"encoding/xml"
	"io"
	"strconv"
	"syscall"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
)

// BenchmarkOMEMOIncoming is the bridge's CPU per received OMEMO 2 message
// of an established session, XMPP side: classify the stanza, decrypt in the
// inbox transaction on SQLite, apply the result (the Matrix send is not
// included).
func BenchmarkOMEMOIncoming(b *testing.B) {
	f := newInboxFixture(b)
	first := f.stanza(b, "warm", f.encrypt(b, f.bobXC, "warm up"))
	if _, err := f.receive(b, first); err != nil {
		b.Fatal(err)
	}
	stanzas := make([]*stanzabuf.Stanza, b.N)
	for i := range stanzas {
		stanzas[i] = f.stanza(b, "b"+strconv.Itoa(i), f.encrypt(b, f.bobXC, "a message of ordinary length, about sixty characters"))
	}
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	for i := 0; i < b.N; i++ {
		in, err := parseIncoming(stanzas[i], f.alice)
		if err != nil {
			b.Fatal(err)
		}
		if err := f.c.decryptIncoming(context.Background(), in); err != nil || in.Body == "" {
			b.Fatalf("decrypt: %v", err)
		}
	}
}

// BenchmarkOMEMOOutgoing is the bridge's CPU per sent OMEMO message of an
// established session, Matrix side excluded: encrypt for the contact's
// device and build and serialise the stanza.
func BenchmarkOMEMOOutgoing(b *testing.B) {
	f := newInboxFixture(b)
	oc := f.c.omemoClient()
	ctx := context.Background()
	if _, err := oc.Encrypt(ctx, f.bob, "warm up"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	for i := 0; i < b.N; i++ {
		out, err := oc.Encrypt(ctx, f.bob, "a message of ordinary length, about sixty characters")
		if err != nil {
			b.Fatal(err)
		}
		r, err := omemoxmpp.BuildMessage(stanza.Message{To: f.bob, ID: "x"}, out)
		if err != nil {
			b.Fatal(err)
		}
		enc := xml.NewEncoder(io.Discard)
		if _, err := xmlstream.Copy(enc, r); err != nil {
			b.Fatal(err)
		}
		if err := enc.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}

// reportCPU reports the process's CPU time (user + system) per operation,
// which unlike ns/op leaves out waiting for the disk; call the returned
// function when the timed loop ends.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/op")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

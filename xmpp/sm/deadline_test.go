package sm_test

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/mxomemo/xmpp-bridge/xmpp/sm"
)

// TestDeadlinesAfterSend: a past write deadline, which mellium sets from a
// goroutine when a send's context ends (possibly after the send returned,
// during another sender's write), does not fail the next write; read
// deadlines still apply.
func TestDeadlinesAfterSend(t *testing.T) {
	past := time.Unix(1, 0)
	tests := []struct {
		name    string
		set     func(net.Conn) error
		write   bool // else read
		wantErr bool
	}{
		{"write deadline", func(c net.Conn) error { return c.SetWriteDeadline(past) }, true, false},
		{"both deadlines, write", func(c net.Conn) error { return c.SetDeadline(past) }, true, false},
		{"read deadline", func(c net.Conn) error { return c.SetReadDeadline(past) }, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			c := sm.New(sm.Options{}).Wrap(a)
			if err := tc.set(c); err != nil {
				t.Fatal(err)
			}
			var err error
			if tc.write {
				go func() { _, _ = io.Copy(io.Discard, b) }()
				_, err = c.Write([]byte("<message/>"))
			} else {
				_, err = c.Read(make([]byte, 8))
			}
			if got := err != nil; got != tc.wantErr {
				t.Fatalf("error %v, want an error: %v", err, tc.wantErr)
			}
			if tc.wantErr && !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("error %v, want the deadline's", err)
			}
		})
	}
}

package testenv

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/jid"
)

// TestProsodyLogLevel: at info the server logs no stanza (no debug line), and LogIQGets still
// lets IQGets count the IQ gets a client sends, per address; at the default level the debug
// lines are there. A host and a bare JID are counted alike (a room's JID is a bare one).
func TestProsodyLogLevel(t *testing.T) {
	for _, c := range []struct {
		name      string
		opts      ProsodyOptions
		wantDebug bool
		wantGets  int // disco#info gets to the MUC service counted
	}{
		{"default", ProsodyOptions{}, true, 0},
		{"info", ProsodyOptions{LogLevel: "info"}, false, 0},
		{"info with IQ gets", ProsodyOptions{LogLevel: "info", LogIQGets: true}, false, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			p := StartProsody(t, c.opts)
			alice, bob := p.CreateAccount(t, "alice", "alicepw"), p.CreateAccount(t, "bob", "bobpw")
			s, err := login(ctx, p.Addr(), jid.MustParse(alice+"/test"), "alicepw",
				&tls.Config{ServerName: "localhost", RootCAs: certPool(t, p), MinVersion: tls.VersionTLS12}, false)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			go func() { _ = s.Serve(nil) }()
			for _, to := range []string{p.MUCDomain(), p.MUCDomain(), p.UploadDomain(), bob} {
				// bob answers nothing to a stranger (an error): the get was sent all the same.
				if _, err := disco.GetInfo(ctx, "", jid.MustParse(to), s); err != nil && to != bob {
					t.Fatalf("disco#info %s: %v", to, err)
				}
			}
			log := p.Log()
			if got := strings.Contains(log, "\tdebug\t"); got != c.wantDebug {
				t.Errorf("debug lines in the log: %v, want %v", got, c.wantDebug)
			}
			if got := p.IQGets(p.MUCDomain()); got != c.wantGets {
				t.Errorf("IQGets(%s) = %d, want %d", p.MUCDomain(), got, c.wantGets)
			}
			if c.opts.LogIQGets {
				for _, to := range []string{p.UploadDomain(), bob} {
					if got := p.IQGets(to); got != 1 {
						t.Errorf("IQGets(%s) = %d, want 1", to, got)
					}
				}
			}
		})
	}
}

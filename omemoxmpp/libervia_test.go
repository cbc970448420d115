//go:build integration

package omemoxmpp

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/internal/testenv"
	"github.com/mxomemo/xmpp-bridge/omemo"
)

// libervia drives scripts/peers/libervia-peer.sh: Libervia 0.9 with
// python-omemo (oldmemo and twomemo), an independent OMEMO client.
type libervia struct {
	t      *testing.T
	script string
	env    []string
}

func startLibervia(t *testing.T, p *testenv.Prosody) *libervia {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("..", "scripts", "peers", "libervia-peer.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(script); err != nil {
		t.Fatalf("Libervia peer script missing: %v", err)
	}
	for _, bin := range []string{"/usr/bin/libervia-backend", "/usr/bin/libervia-cli", "/usr/bin/sqlite3"} {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("%s missing (scripts/install-deps.sh installs Libervia): %v", bin, err)
		}
	}
	dir, err := os.MkdirTemp("", "omemoxmpp-libervia-")
	if err != nil {
		t.Fatal(err)
	}
	l := &libervia{t: t, script: script, env: append(os.Environ(),
		"LIBERVIA_DIR="+dir, "XMPP_HOST="+p.Host(), "XMPP_PORT="+strconv.Itoa(p.Port()))}
	t.Cleanup(func() {
		if t.Failed() {
			if out, err := l.run(10*time.Second, "log"); err == nil {
				lines := strings.Split(out, "\n")
				if len(lines) > 80 {
					lines = lines[len(lines)-80:]
				}
				t.Logf("--- libervia log tail ---\n%s", strings.Join(lines, "\n"))
			}
		}
		if _, err := l.run(30*time.Second, "destroy"); err != nil {
			t.Logf("libervia destroy: %v", err)
		}
	})
	l.must(60*time.Second, "start")
	return l
}

func (l *libervia) run(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/bash", append([]string{l.script}, args...)...)
	cmd.Env = l.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (l *libervia) must(timeout time.Duration, args ...string) string {
	l.t.Helper()
	out, err := l.run(timeout, args...)
	if err != nil {
		l.t.Fatalf("libervia %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// history returns the messages Libervia stored with peer.
func (l *libervia) history(own, peer string) []map[string]any {
	l.t.Helper()
	out := l.must(60*time.Second, "history", "lib", own, peer, "50")
	var rows []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var row map[string]any
		if json.Unmarshal([]byte(sc.Text()), &row) == nil {
			rows = append(rows, row)
		}
	}
	return rows
}

// receiveText waits for the next message with a body (skipping heartbeats,
// key transport messages and envelopes without body, which are never chat
// messages).
func (p *peer) receiveText(t *testing.T) *Message {
	t.Helper()
	for {
		m := p.receive(t)
		if m.Empty && m.Body != "" {
			t.Errorf("%s: empty message with a body", p.name)
		}
		if !m.Empty && m.Body != "" {
			return m
		}
		// Libervia answers our 0.3 key exchange with a 0.3 key transport
		// element wrapped in an OMEMO 2 envelope: a message without body.
		t.Logf("%s: skipped a message without body (%s, content %q)", p.name, m.Version, m.Content)
	}
}

// TestLibervia exchanges OMEMO 2 and OMEMO 0.3 messages both ways with
// Libervia (python-omemo), through Prosody.
func TestLibervia(t *testing.T) {
	prosody := testenv.SharedProsody(t)
	alice := jid.MustParse(prosody.CreateAccount(t, unique("bridge"), "bridgepw"))
	libJID := jid.MustParse(prosody.CreateAccount(t, unique("lib"), "libpw"))
	l := startLibervia(t, prosody)
	l.must(60*time.Second, "profile", "lib", libJID.String(), "libpw")

	a := dialPeer(t, "bridge", alice, "bridgepw", Options{Label: "Matrix bridge"})
	a.presence(t)
	l.must(60*time.Second, "connect", "lib")
	a.sendPresence(t, libJID, stanza.SubscribePresence)
	time.Sleep(500 * time.Millisecond)
	l.must(60*time.Second, "approve", "lib", alice.String())
	time.Sleep(500 * time.Millisecond)
	a.sendPresence(t, libJID, stanza.SubscribedPresence)
	// Its own minute from here: Libervia's start, profile and subscription
	// above take most of one on a loaded machine.
	ctx := testCtx(t)
	if err := a.c.Announce(ctx); err != nil {
		t.Fatalf("announce: %v", err)
	}
	l.must(180*time.Second, "ensure", "lib", alice.String())
	ctx = testCtx(t)

	// Libervia announced its device in both namespaces.
	var set DeviceSet
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		set, err = a.c.FetchDevices(ctx, libJID)
		if err != nil {
			t.Fatalf("fetch Libervia's devices: %v", err)
		}
		v2, v03 := false, false
		for id := range set {
			v2 = v2 || set.Speaks(id, omemo.V2)
			v03 = v03 || set.Speaks(id, omemo.V03)
		}
		if v2 && v03 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Libervia's device lists incomplete: %v", set)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("Libervia devices: %v", set)

	only03, err := NewSession(a.m, a.store, a.s, Options{Versions: []omemo.Version{omemo.V03}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		c    *Client
		v    omemo.Version
		text string
	}{
		{"to Libervia over OMEMO 2", a.c, omemo.V2, "hello Libervia over OMEMO 2 <&>"},
		{"to Libervia over OMEMO 0.3", only03, omemo.V03, "hello Libervia over OMEMO 0.3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			out, err := tc.c.Encrypt(ctx, libJID, tc.text)
			if err != nil {
				t.Fatalf("encrypt: %v", err)
			}
			if len(out.Elements) != 1 || out.Elements[0].Version != tc.v {
				t.Fatalf("want one %s element, got %d", tc.v, len(out.Elements))
			}
			a.send(t, libJID, out)
			l.must(60*time.Second, "wait-message", "lib", libJID.String(), alice.String(), tc.text, "30")
			found := false
			for _, row := range l.history(libJID.String(), alice.String()) {
				if row["body"] == tc.text {
					found = true
					if row["encrypted"] != true {
						t.Errorf("Libervia did not mark the message encrypted: %v", row)
					}
				}
			}
			if !found {
				t.Error("message not in Libervia's history")
			}
		})
	}

	for _, tc := range []struct {
		name, backend, text string
		v                   omemo.Version
	}{
		{"from Libervia over OMEMO 2", "twomemo", "hello bridge from Libervia over OMEMO 2", omemo.V2},
		{"from Libervia over OMEMO 0.3", "oldmemo", "hello bridge from Libervia over OMEMO 0.3", omemo.V03},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l.must(60*time.Second, "send", "lib", tc.backend, alice.String(), tc.text)
			m := a.receiveText(t)
			if m.Body != tc.text || m.Version != tc.v || m.Sender.JID != libJID.String() || !m.Trusted {
				t.Errorf("got %+v, want %q over %s", m, tc.text, tc.v)
			}
		})
	}
}

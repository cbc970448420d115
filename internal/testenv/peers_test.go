package testenv

import (
	"os"
	"strings"
	"testing"
	"time"
)

// The peer tests check that the independent clients the OMEMO e2e tests rely on work here, so a
// broken peer shows up as itself and not as a bridge failure.

func TestMatrixPeer(t *testing.T) {
	t.Parallel()
	d := SharedDendrite(t)
	aliceID, _ := d.RegisterUser(t, "peer_alice", "alicepassword")
	bobID, _ := d.RegisterUser(t, "peer_bob", "bobpassword")
	alice := StartMatrixPeer(t, d, aliceID, "alicepassword")
	bob := StartMatrixPeer(t, d, bobID, "bobpassword")

	room := alice.CreateRoom(t, false, bobID)
	if got := bob.WaitInvite(t, 10*time.Second); got != room {
		t.Fatalf("bob invited to %s, want %s", got, room)
	}
	bob.Join(t, room)
	alice.Send(t, room, "megolm hello")
	m := bob.WaitMessage(t, room, "megolm hello", 15*time.Second)
	if m.Sender != aliceID || !m.Encrypted || !m.Decrypted || m.MsgType != "m.text" {
		t.Fatalf("bob got %+v", m)
	}
	bob.Send(t, room, "megolm reply")
	if m := alice.WaitMessage(t, room, "megolm reply", 15*time.Second); !m.Decrypted {
		t.Fatalf("alice got %+v", m)
	}
	if _, enc := bob.Messages(t, room); !enc {
		t.Fatal("room not reported as encrypted")
	}
}

func TestLiberviaPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Libervia (~30 s)")
	}
	t.Parallel()
	p := SharedProsody(t)
	sue := p.CreateAccount(t, "lv_sue", "suepw")
	tom := p.CreateAccount(t, "lv_tom", "tompw")
	l := StartLibervia(t, p)
	ps := l.AddProfile(t, sue, "suepw")
	pt := l.AddProfile(t, tom, "tompw")
	l.Run(t, "befriend", ps, sue, pt, tom)
	l.Run(t, "ensure", ps, tom)
	l.Run(t, "ensure", pt, sue)
	l.Run(t, "send", ps, "twomemo", tom, "omemo 2 hello")
	l.Run(t, "send", ps, "oldmemo", tom, "omemo 0.3 hello")
	l.Run(t, "wait-message", pt, tom, sue, "omemo 0.3 hello", "20")
	got := map[string]bool{}
	for _, m := range l.History(t, pt, tom, sue) {
		if m.Encrypted {
			got[m.Body] = true
		}
	}
	if !got["omemo 2 hello"] || !got["omemo 0.3 hello"] {
		t.Fatalf("tom's encrypted history: %v", got)
	}
	assertNotArchivedInPlain(t, p, "lv_tom", "omemo 2 hello", "omemo 0.3 hello")
}

func TestProfanityPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Profanity in tmux (~20 s)")
	}
	t.Parallel()
	p := SharedProsody(t)
	p.CreateAccount(t, "pf_ann", "annpw")
	p.CreateAccount(t, "pf_ben", "benpw")
	pp := StartProfanity(t, p)
	pp.Run(t, "up", "pf_ann", "annpw")
	pp.Run(t, "up", "pf_ben", "benpw")
	pp.Run(t, "pair", "pf_ann", "pf_ben")
	pp.Run(t, "send", "pf_ann", "pf_ben@localhost", "legacy omemo hello")
	pp.Run(t, "wait", "pf_ben", "legacy omemo hello", "20")
	if !strings.Contains(pp.Run(t, "log", "pf_ben", "pf_ann@localhost"), "pf_ann@localhost: legacy omemo hello") {
		t.Fatal("ben's chat log lacks the message")
	}
	assertNotArchivedInPlain(t, p, "pf_ben", "legacy omemo hello")
}

// assertNotArchivedInPlain checks the server's MAM archive of an account holds OMEMO elements and
// none of the plaintexts: the peers really encrypted.
func assertNotArchivedInPlain(t *testing.T, p *Prosody, localpart string, plaintexts ...string) {
	t.Helper()
	b, err := os.ReadFile(p.Dir() + "/data/localhost/archive/" + strings.ReplaceAll(localpart, "_", "%5f") + ".list")
	if err != nil {
		t.Fatalf("archive of %s: %v", localpart, err)
	}
	if !strings.Contains(string(b), "eu.siacs.conversations.axolotl") && !strings.Contains(string(b), "urn:xmpp:omemo:2") {
		t.Fatalf("archive of %s has no OMEMO element", localpart)
	}
	for _, pt := range plaintexts {
		if strings.Contains(string(b), pt) {
			t.Fatalf("archive of %s holds plaintext %q", localpart, pt)
		}
	}
}

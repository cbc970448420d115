package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

// TestPresence: presence both ways on Dendrite. A contact's XMPP presence (away with a status,
// available, dnd, offline) becomes the Matrix presence of the contact's ghost, seen in the
// Matrix user's /sync and in GET /presence; a burst of 30 presence changes is paced into a few
// updates that end on the last one; the Matrix user's presence (unavailable with a status)
// becomes the account's XMPP presence (away with that status), seen by the contact.
func TestPresence(t *testing.T) {
	for _, server := range []string{"prosody", "ejabberd"} {
		t.Run(server, func(t *testing.T) {
			t.Parallel()
			runPresence(t, server)
		})
	}
}

func runPresence(t *testing.T, server string) {
	s := newStackOn(t, server, "sqlite", testenv.ProsodyOptions{}, func(c *harness.BridgeConfig) {
		c.Network = map[string]any{"presence.poll_seconds": 5}
	})
	alice, alicePW := s.account(t, "palice")
	bob, bobPW := s.account(t, "pbob")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bobC := s.peer(t, bob, bobPW, "laptop")
	subscribeBoth(ctx, t, s, alice, alicePW, bobC)

	u := s.matrixUser(t, "mxpresence")
	mgmt := s.loginUser(ctx, t, u, alice, alicePW)
	// A portal with bob's ghost: Dendrite's /sync carries the presence of users one shares a
	// room with.
	hello := uniq("hello from bob")
	if err := bobC.SendChat(ctx, alice, msgID(hello), "", hello); err != nil {
		t.Fatal(err)
	}
	waitRoomWith(ctx, t, u, s.ghost(bob), hello, mgmt)
	ghost := s.ghost(bob)

	steps := []struct {
		raw      string
		presence event.Presence
		status   string
	}{
		{`<presence xmlns="jabber:client"><show>away</show><status>at lunch</status></presence>`, event.PresenceUnavailable, "at lunch"},
		{`<presence xmlns="jabber:client"><status>back</status></presence>`, event.PresenceOnline, "back"},
		{`<presence xmlns="jabber:client"><show>dnd</show></presence>`, event.PresenceUnavailable, "Do not disturb"},
		{`<presence xmlns="jabber:client" type="unavailable"><status>gone home</status></presence>`, event.PresenceOffline, "gone home"},
		{`<presence xmlns="jabber:client"><show>chat</show><status>here again</status></presence>`, event.PresenceOnline, "here again"},
	}
	for _, st := range steps {
		if err := bobC.SendRaw(ctx, st.raw); err != nil {
			t.Fatal(err)
		}
		waitGhostPresence(ctx, t, u, ghost, st.presence, st.status)
	}

	// A burst: 30 changes within a moment become a few paced updates, the last one winning.
	before := strings.Count(s.bridge.Log(), "Set a ghost's presence")
	for i := range 30 {
		show := []string{"away", "xa", "dnd"}[i%3]
		if err := bobC.SendRaw(ctx, fmt.Sprintf(`<presence xmlns="jabber:client"><show>%s</show><status>burst %02d</status></presence>`, show, i)); err != nil {
			t.Fatal(err)
		}
	}
	waitGhostPresence(ctx, t, u, ghost, event.PresenceUnavailable, "burst 29")
	time.Sleep(2 * time.Second) // a late update would be counted now
	pushed := strings.Count(s.bridge.Log(), "Set a ghost's presence") - before
	t.Logf("30 presence changes of one contact became %d ghost presence updates", pushed)
	if pushed < 1 || pushed > 10 {
		t.Errorf("30 presence changes became %d ghost presence updates, want 1–10", pushed)
	}

	// Matrix -> XMPP: the user goes idle with a status; bob sees the bridge's resource away.
	presCur := bobC.PresenceCursor()
	u.Client.SyncPresence = event.PresenceUnavailable
	if err := u.Client.SetPresence(ctx, mautrix.ReqPresence{Presence: event.PresenceUnavailable, StatusMsg: "in a meeting"}); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer wcancel()
	pr, err := bobC.WaitPresence(wctx, presCur, func(p harness.ReceivedPresence) bool {
		return strings.HasPrefix(p.From, alice.String()+"/") && p.Type == "" && p.Show == "away"
	})
	if err != nil {
		t.Fatalf("bob never saw alice away: %v", err)
	}
	if pr.Status != "in a meeting" {
		t.Errorf("alice's away presence says %q, want %q", pr.Status, "in a meeting")
	}
}

// subscribeBoth makes account and bob subscribe to each other's presence (a client of account's
// does it, then leaves).
func subscribeBoth(ctx context.Context, t *testing.T, s *stack, account jid.JID, pw string, bobC *harness.Peer) {
	t.Helper()
	own := s.peer(t, account, pw, "phone")
	bob := bobC.JID.Bare()
	cur := own.PresenceCursor()
	// One step at a time, each side waiting for the other's request (ejabberd drops an approval
	// that arrives before the request).
	send := func(p *harness.Peer, to jid.JID, kind string) {
		t.Helper()
		if err := p.SendRaw(ctx, fmt.Sprintf(`<presence xmlns="jabber:client" to=%q type=%q/>`, to.String(), kind)); err != nil {
			t.Fatal(err)
		}
	}
	await := func(p *harness.Peer, from int, sender jid.JID, kind string) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, stepTimeout)
		defer cancel()
		if _, err := p.WaitPresence(wctx, from, func(pr harness.ReceivedPresence) bool {
			return strings.HasPrefix(pr.From, sender.String()) && pr.Type == kind
		}); err != nil {
			t.Fatalf("%s got no %s from %s: %v", p.JID, kind, sender, err)
		}
	}
	bobCur := bobC.PresenceCursor()
	send(own, bob, "subscribe")
	await(bobC, bobCur, account, "subscribe")
	send(bobC, account, "subscribed")
	send(bobC, account, "subscribe")
	await(own, cur, bob, "subscribe")
	send(own, bob, "subscribed")
	wctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if _, err := own.WaitPresence(wctx, cur, func(p harness.ReceivedPresence) bool {
		return strings.HasPrefix(p.From, bob.String()+"/") && p.Type == ""
	}); err != nil {
		t.Fatalf("%s never saw bob's presence: %v", account, err)
	}
	own.Close()
}

// waitGhostPresence waits for the ghost's presence in the Matrix user's /sync, then checks GET
// /presence agrees.
func waitGhostPresence(ctx context.Context, t *testing.T, u *harness.MatrixUser, ghost id.UserID, want event.Presence, status string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	_, _, err := u.WaitEvent(wctx, "", 0, func(evt *event.Event) bool {
		if evt.Type != event.EphemeralEventPresence || evt.Sender != ghost {
			return false
		}
		_ = evt.Content.ParseRaw(evt.Type)
		p := evt.Content.AsPresence()
		return p.Presence == want && p.StatusMessage == status
	})
	if err != nil {
		t.Fatalf("no %s presence %q of %s in /sync: %v", want, status, ghost, err)
	}
	resp, err := u.Client.GetPresence(ctx, ghost)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Presence != want || resp.StatusMsg != status {
		t.Errorf("GET /presence of %s: %s %q, want %s %q", ghost, resp.Presence, resp.StatusMsg, want, status)
	}
}

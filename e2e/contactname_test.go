package e2e

import (
	"context"
	"encoding/xml"
	"strings"
	"testing"

	"maunium.net/go/mautrix/id"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
)

// TestContactNames: contacts outside alice's roster get names (contactname.go): carol's PEP nick
// (XEP-0172) in the start-chat answer and on her ghost, dave's nick carried by his first message
// (XEP-0172 in the message) on his ghost, and erin, who publishes nothing, her localpart.
func TestContactNames(t *testing.T) {
	s := newStack(t, "sqlite")
	alice, alicePW := s.account(t, "alice")
	carol, carolPW := s.account(t, "carol")
	dave, davePW := s.account(t, "dave")
	erin, _ := s.account(t, "erin")
	carolC := s.peer(t, carol, carolPW, "phone")
	daveC := s.peer(t, dave, davePW, "phone")
	u := s.matrixUser(t, "mxnames")
	ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
	defer cancel()

	// carol's nick, readable by anyone (PEP's default access model is presence).
	resp, err := carolC.Session.SendIQ(ctx, xml.NewDecoder(strings.NewReader(`<iq xmlns="jabber:client" type="set" id="nick1">`+
		`<pubsub xmlns="http://jabber.org/protocol/pubsub"><publish node="http://jabber.org/protocol/nick"><item id="current">`+
		`<nick xmlns="http://jabber.org/protocol/nick">Carol Nick</nick></item></publish>`+
		`<publish-options><x xmlns="jabber:x:data" type="submit">`+
		`<field var="FORM_TYPE" type="hidden"><value>http://jabber.org/protocol/pubsub#publish-options</value></field>`+
		`<field var="pubsub#access_model"><value>open</value></field></x></publish-options></pubsub></iq>`)))
	if err != nil {
		t.Fatalf("carol failed to publish her nick: %v", err)
	}
	_ = resp.Close()

	mgmt := s.loginUser(ctx, t, u, alice, alicePW)

	t.Run("StartChatPEPNick", func(t *testing.T) {
		got, err := u.Command(ctx, mgmt, s.bot, "start-chat "+carol.String(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(got, "Carol Nick") {
			t.Errorf("start-chat answered %q, want carol's nick", got)
		}
		if name := displayName(ctx, t, u, s.ghost(carol)); !strings.Contains(name, "Carol Nick") {
			t.Errorf("carol's ghost is named %q", name)
		}
	})

	t.Run("StartChatLocalpart", func(t *testing.T) {
		got, err := u.Command(ctx, mgmt, s.bot, "start-chat "+erin.String(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(got, "erin (XMPP)") && !strings.Contains(got, "/ erin") {
			t.Errorf("start-chat answered %q, want erin's localpart as her name", got)
		}
		if strings.Contains(got, "/ [](") || strings.Contains(got, "/ :") {
			t.Errorf("start-chat answered %q: the name is empty", got)
		}
	})

	t.Run("MessageNick", func(t *testing.T) {
		body := uniq("hello from dave")
		if err := daveC.SendRaw(ctx, `<message xmlns="jabber:client" type="chat" to="`+alice.String()+`" id="dave-1">`+
			`<body>`+body+`</body><nick xmlns="http://jabber.org/protocol/nick">Dave D.</nick></message>`); err != nil {
			t.Fatal(err)
		}
		room, err := u.FindRoomWith(ctx, s.ghost(dave), mgmt)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := u.WaitEvent(ctx, room, 0, harness.IsMessage(s.ghost(dave), body)); err != nil {
			t.Fatal(err)
		}
		if name := displayName(ctx, t, u, s.ghost(dave)); !strings.Contains(name, "Dave D.") {
			t.Errorf("dave's ghost is named %q, want the nick of his message", name)
		}
	})
}

// displayName is the global display name of a Matrix user.
func displayName(ctx context.Context, t *testing.T, u *harness.MatrixUser, user id.UserID) string {
	t.Helper()
	resp, err := u.Client.GetDisplayName(ctx, user)
	if err != nil {
		t.Fatalf("failed to get the display name of %s: %v", user, err)
	}
	return resp.DisplayName
}

package e2e

import (
	"context"
	"strings"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
)

// TestLoginPasswordLeftInRoom: a management room made with the private_chat preset leaves the bot
// at power level 0, where it cannot remove the password message. The login flow says so before
// asking (with the power level it needs and how to make the room), and after the password was
// sent the bot tells the user that it is still readable and what to do. In a room made as
// Element makes direct chats (trusted_private_chat) neither warning appears and the password
// is removed.
func TestLoginPasswordLeftInRoom(t *testing.T) {
	s := newStack(t, "sqlite")
	alice, alicePW := s.account(t, "alice")
	bob, bobPW := s.account(t, "bob")
	t.Run("PrivateChatPreset", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
		defer cancel()
		u := s.matrixUser(t, "mxpriv")
		resp, err := u.Client.CreateRoom(ctx, &mautrix.ReqCreateRoom{
			Preset: "private_chat", IsDirect: true, Invite: []id.UserID{s.bot}, Name: "bridge bot",
		})
		if err != nil {
			t.Fatal(err)
		}
		room := resp.RoomID
		if _, _, err := u.WaitEvent(ctx, room, 0, harness.IsMessage(s.bot, "management room")); err != nil {
			t.Fatal(err)
		}
		cur := u.Cursor(room)
		res, err := s.login(t, u, room, alice, alicePW)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := u.WaitEvent(ctx, room, cur, func(evt *event.Event) bool {
			b := harness.Body(evt)
			return evt.Sender == s.bot && strings.Contains(b, "I cannot delete your password message") && strings.Contains(b, "power level 50")
		}); err != nil {
			t.Errorf("no warning before the password prompt: %v (bot said %v)", err, botBodies(u, room, s.bot, cur))
		}
		notice, _, err := u.WaitEvent(ctx, room, cur, func(evt *event.Event) bool {
			b := harness.Body(evt)
			return evt.Sender == s.bot && strings.Contains(b, "could not delete the message with your password") &&
				strings.Contains(b, "Delete it yourself")
		})
		if err != nil {
			t.Errorf("no notice that the password is still in the room: %v (bot said %v)", err, botBodies(u, room, s.bot, cur))
		}
		if notice != nil {
			if rel := notice.Content.AsMessage().RelatesTo; rel == nil || rel.GetReplyTo() != res.PasswordEvent {
				t.Errorf("the notice answers %+v, want the password message %s", rel, res.PasswordEvent)
			}
		}
		evt, err := u.Client.GetEvent(ctx, room, res.PasswordEvent)
		if err != nil || evt.Unsigned.RedactedBecause != nil {
			t.Errorf("the password message %s: %v, %+v (the test expects the bot to fail removing it)", res.PasswordEvent, err, evt)
		}
	})

	t.Run("TrustedPrivateChat", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
		defer cancel()
		u := s.matrixUser(t, "mxtrusted")
		room, err := u.OpenManagementRoom(ctx, s.bot)
		if err != nil {
			t.Fatal(err)
		}
		cur := u.Cursor(room)
		res, err := s.login(t, u, room, bob, bobPW)
		if err != nil {
			t.Fatal(err)
		}
		if err := u.WaitRedacted(ctx, room, res.PasswordEvent); err != nil {
			t.Fatal(err)
		}
		for _, b := range botBodies(u, room, s.bot, cur) {
			if strings.Contains(b, "cannot delete") || strings.Contains(b, "could not delete") {
				t.Errorf("warning in a room where the bot can redact: %q", b)
			}
		}
	})
}

func botBodies(u *harness.MatrixUser, room id.RoomID, bot id.UserID, from int) []string {
	var out []string
	for _, evt := range u.Timeline(room)[from:] {
		if evt.Sender == bot && evt.Type == event.EventMessage {
			out = append(out, harness.Body(evt))
		}
	}
	return out
}

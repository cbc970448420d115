package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

// TestMatrixSide is the bridge as a Matrix E2EE user sees it (example config: encryption on by
// default, self_sign on), read by matrix-nio in the mode of a client that accepts keys only from
// cross-signed devices:
//   - the bot's device is cross-signed on first start (chain checked from /keys/query), so
//     strict nio decrypts contacts' messages as verified and shares its own keys with the bridge;
//   - the DM portal's invite carries is_direct;
//   - refused actions (edit of the contact's message, a reaction XMPP cannot carry) and an
//     undecryptable event each get a notice, and every notice, bot reply and ghost message in
//     the encrypted rooms (portal, encrypted management room) is m.room.encrypted in the raw
//     /messages and /sync JSON: no plaintext m.room.message from the bridge;
//   - help in an encrypted management room lists no command the bridge cannot do, and the
//     welcome says "a Jabber/XMPP bridge bot".
func TestMatrixSide(t *testing.T) {
	s := newStack(t, "sqlite", func(c *harness.BridgeConfig) { c.EncryptionDefault = true })
	alice, alicePW := s.account(t, "alice")
	bob, bobPW := s.account(t, "bob")
	bobC := s.peer(t, bob, bobPW, "laptop")
	u := s.matrixUser(t, "mxside")
	// Accepting an invite takes a person a moment: bridgev2 may send the user's invite twice
	// (bridgev2's own invite of the login's user races the portal's member sync), and the
	// invite that counts is the last one before the join.
	u.JoinDelay = 2 * time.Second
	nio := testenv.StartMatrixPeer(t, s.dendrite, u.UserID().String(), "matrix-mxside-pw")

	ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
	defer cancel()
	mgmt := s.loginUser(ctx, t, u, alice, alicePW)

	hello := uniq("hello from bob")
	if err := bobC.SendChat(ctx, alice, "", "", hello); err != nil {
		t.Fatal(err)
	}
	room, err := u.FindRoomWith(ctx, s.ghost(bob), mgmt)
	if err != nil {
		t.Fatal(err)
	}
	// Cross-signing of the bot's device, as a strict client checks it (nio learns
	// of the bot's device in the portal, an encrypted room they share).
	devs, _ := nio.Do(t, map[string]any{"cmd": "trust-cross-signed", "user": s.bot.String()})["devices"].(map[string]any)
	if len(devs) == 0 {
		t.Fatalf("the bot has no device keys: %v", devs)
	}
	for dev, ok := range devs {
		if ok != true {
			t.Fatalf("the bot's device %s is not cross-signed (self_sign): %v", dev, devs)
		}
	}

	got := nio.WaitMessage(t, string(room), hello, stepTimeout)
	// The ghost's message is encrypted by the bot's device (no per-ghost devices without
	// MSC4190): a strict client accepts it because that device is cross-signed; it cannot tie
	// the device to the ghost (nio's per-sender "verified" stays false, Element's "encrypted by
	// an unknown or deleted device").
	if !got.Decrypted || !got.KeyDeviceVerified || got.KeyDeviceUser != s.bot.String() {
		t.Fatalf("the contact's message as a cross-signed-only client sees it: %+v, want decrypted with a room key from the bot's verified device", got)
	}

	t.Run("DirectChat", func(t *testing.T) {
		invite := memberEvent(t, u, room, u.UserID(), event.MembershipInvite)
		if invite == nil {
			t.Fatal("no invite of the user in the portal's history")
		}
		if invite.Content.Raw["is_direct"] != true {
			t.Errorf("the portal invite has no is_direct: %s", rawJSON(invite.Content.Raw))
		}
	})

	t.Run("StrictSend", func(t *testing.T) {
		body := uniq("strict reply")
		cur := bobC.Cursor()
		res := nio.Do(t, map[string]any{"cmd": "send", "room": string(room), "text": body, "strict": true})
		if res["event_id"] == nil {
			t.Fatalf("strict send failed: %v", res)
		}
		sctx, scancel := stepCtx()
		defer scancel()
		if _, _, err := bobC.WaitMessage(sctx, cur, bodyIs(body)); err != nil {
			t.Fatalf("a message with keys shared only to verified devices did not reach bob: %v", err)
		}
	})

	t.Run("RefusalNotices", func(t *testing.T) {
		// An edit of bob's message: XMPP corrections are of one's own messages only.
		cur := bobC.Cursor()
		edit := uniq("edit of bob's message")
		nio.Do(t, map[string]any{"cmd": "send", "room": string(room), "content": map[string]any{
			"msgtype": "m.text", "body": "* " + edit,
			"m.new_content": map[string]any{"msgtype": "m.text", "body": edit},
			"m.relates_to":  map[string]any{"rel_type": "m.replace", "event_id": got.EventID},
		}})
		waitNioContains(t, nio, string(room), "only your own messages can be corrected on XMPP")
		// A reaction longer than XEP-0444 carries.
		nio.Do(t, map[string]any{"cmd": "send", "room": string(room), "type": "m.reaction", "content": map[string]any{
			"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": got.EventID, "key": strings.Repeat("x", 80)},
		}})
		waitNioContains(t, nio, string(room), "cannot be sent over XMPP")
		if n := peerCount(bobC, edit); n != 0 {
			t.Errorf("the refused edit reached bob")
		}
		_ = cur
	})

	t.Run("UndecryptableNotice", func(t *testing.T) {
		sctx, scancel := stepCtx()
		defer scancel()
		if _, err := u.Client.SendMessageEvent(sctx, room, event.EventEncrypted, undecryptableContent()); err != nil {
			t.Fatal(err)
		}
		waitNioContains(t, nio, string(room), "hasn't received the decryption keys")
	})

	var newcomer *harness.MatrixUser
	// A new user, not logged in: bridgev2 shows every command in help until there is a login.
	var encMgmt id.RoomID
	t.Run("EncryptedManagementRoom", func(t *testing.T) {
		newcomer = s.matrixUser(t, "mxnew")
		nio2 := testenv.StartMatrixPeer(t, s.dendrite, newcomer.UserID().String(), "matrix-mxnew-pw")
		encMgmt = id.RoomID(fmt.Sprint(nio2.Do(t, map[string]any{"cmd": "create-room", "invite": []string{s.bot.String()}, "direct": true})["room_id"]))
		waitNioContains(t, nio2, string(encMgmt), "bridge bot")
		msgs, _ := nio2.Messages(t, string(encMgmt))
		welcome := false
		for _, m := range msgs {
			if m.Sender == s.bot.String() && strings.Contains(m.Body, "bridge bot") {
				welcome = strings.Contains(m.Body, "I'm a Jabber/XMPP bridge bot") && m.Decrypted
				t.Logf("welcome: %q (decrypted %v)", m.Body, m.Decrypted)
			}
		}
		if !welcome {
			t.Errorf("no encrypted welcome saying \"a Jabber/XMPP bridge bot\": %+v", msgs)
		}
		nio2.Send(t, string(encMgmt), "help")
		waitNioContains(t, nio2, string(encMgmt), "**start-chat**")
		msgs, _ = nio2.Messages(t, string(encMgmt))
		var help string
		for _, m := range msgs {
			if m.Sender == s.bot.String() && strings.Contains(m.Body, "**start-chat**") {
				help = m.Body
				if !m.Decrypted {
					t.Errorf("help was not encrypted: %+v", m)
				}
			}
		}
		for _, cmd := range []string{"search", "import-image-pack"} {
			if strings.Contains(help, "**"+cmd+"**") {
				t.Errorf("help lists %s, which the bridge does not support:\n%s", cmd, help)
			}
		}
		// The hidden command answers once.
		nio2.Send(t, string(encMgmt), "import-image-pack https://example.org/pack")
		waitNioContains(t, nio2, string(encMgmt), "not supported by the XMPP bridge")
		barrier := "list-logins"
		nio2.Send(t, string(encMgmt), barrier)
		waitNioContains(t, nio2, string(encMgmt), "You're not logged in")
		msgs, _ = nio2.Messages(t, string(encMgmt))
		n := 0
		for _, m := range msgs {
			if m.Sender == s.bot.String() && (strings.Contains(m.Body, "import-image-pack") || strings.Contains(m.Body, "pack")) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("import-image-pack answered %d times, want once: %+v", n, msgs)
		}
	})

	t.Run("NoPlaintextFromBridge", func(t *testing.T) {
		for _, r := range []id.RoomID{room, encMgmt} {
			if r == "" {
				continue
			}
			var raw []rawEvent
			var timeline []*event.Event
			if r == room {
				raw, timeline = rawMessages(t, u, r), u.Timeline(r)
			} else {
				raw, timeline = rawMessages(t, newcomer, r), newcomer.Timeline(r)
			}
			var bridgeEncrypted int
			for _, evt := range raw {
				if !s.isBridgeUser(evt.Sender) {
					continue
				}
				switch evt.Type {
				case "m.room.message", "m.sticker":
					t.Errorf("plaintext %s from %s in encrypted room %s (/messages): %s", evt.Type, evt.Sender, r, evt.Content)
				case "m.room.encrypted":
					bridgeEncrypted++
				}
			}
			if bridgeEncrypted == 0 {
				t.Errorf("no encrypted event from the bridge in %s: the check would prove nothing", r)
			}
			for _, evt := range timeline {
				if s.isBridgeUser(evt.Sender) && (evt.Type == event.EventMessage || evt.Type == event.EventSticker) {
					t.Errorf("plaintext %s from %s in encrypted room %s (/sync): %s", evt.Type.Type, evt.Sender, r, rawJSON(evt.Content.Raw))
				}
			}
			t.Logf("%s: %d events from the bridge, all m.room.encrypted", r, bridgeEncrypted)
		}
	})
}

// isBridgeUser is the bot or a ghost.
func (s *stack) isBridgeUser(u id.UserID) bool {
	return u == s.bot || strings.HasPrefix(string(u), "@xmpp_")
}

// rawEvent is an event of /messages as the homeserver sent it.
type rawEvent struct {
	Type     string          `json:"type"`
	Sender   id.UserID       `json:"sender"`
	StateKey *string         `json:"state_key"`
	Content  json.RawMessage `json:"content"`
}

// rawMessages reads the room's whole history (/messages) as raw JSON.
func rawMessages(t *testing.T, u *harness.MatrixUser, room id.RoomID) []rawEvent {
	t.Helper()
	ctx, cancel := stepCtx()
	defer cancel()
	var out []rawEvent
	from := ""
	for range 20 {
		var resp struct {
			Chunk []rawEvent `json:"chunk"`
			End   string     `json:"end"`
		}
		q := map[string]string{"dir": "b", "limit": "100"}
		if from != "" {
			q["from"] = from
		}
		url := u.Client.BuildURLWithQuery(mautrix.ClientURLPath{"v3", "rooms", room, "messages"}, q)
		if _, err := u.Client.MakeRequest(ctx, "GET", url, nil, &resp); err != nil {
			t.Fatalf("failed to read /messages of %s: %v", room, err)
		}
		out = append(out, resp.Chunk...)
		if resp.End == "" || len(resp.Chunk) == 0 {
			break
		}
		from = resp.End
	}
	return out
}

// memberEvent finds the m.room.member event of user with membership in room's history.
func memberEvent(t *testing.T, u *harness.MatrixUser, room id.RoomID, user id.UserID, membership event.Membership) *event.Event {
	t.Helper()
	for _, r := range rawMessages(t, u, room) {
		if r.Type != event.StateMember.Type || r.StateKey == nil || *r.StateKey != user.String() {
			continue
		}
		var content map[string]any
		if err := json.Unmarshal(r.Content, &content); err != nil {
			t.Fatal(err)
		}
		t.Logf("member event of %s: %s", user, r.Content)
		if content["membership"] == string(membership) {
			return &event.Event{Type: event.StateMember, Sender: r.Sender, Content: event.Content{Raw: content}}
		}
	}
	return nil
}

func rawJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// undecryptableContent is a Megolm event from a device that never shared its session.
func undecryptableContent() map[string]any {
	return map[string]any{
		"algorithm":  "m.megolm.v1.aes-sha2",
		"sender_key": base64.RawStdEncoding.EncodeToString([]byte("curve25519 key of a lost device!")),
		"device_id":  "BROKENCLIENT",
		"session_id": base64.RawStdEncoding.EncodeToString([]byte("no such megolm session, anywhere")),
		"ciphertext": base64.RawStdEncoding.EncodeToString(append([]byte{3, 8, 0, 18, 160, 1}, make([]byte, 160+64+8)...)),
	}
}

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

// TestInvitations shows group chat invitations, private messages with occupants and group
// creation on real Prosody and ejabberd with Dendrite:
//   - a direct invitation (XEP-0249) from a roster contact becomes the room's portal with the
//     Matrix user invited; accepting the Matrix invite joins the XMPP room;
//   - a mediated invitation (XEP-0045 §7.8.2) through a members-only room does the same (the
//     room made alice a member on the owner's invitation);
//   - leaving a room's portal on Matrix (with bridge_matrix_leave on) leaves the XMPP room and
//     clears the bookmark's autojoin;
//   - a new invitation to a room whose kept portal the user left invites the user to that portal
//     again; to a room left with `leave` while the user stays in the portal, it is a notice there
//     and `join` in the portal enters the room;
//   - an invitation from someone outside the roster makes no portal;
//   - the Matrix user inviting a contact's ghost into a room portal sends the contact a mediated
//     invitation from the room;
//   - rejecting a mediated invitation's Matrix invite (with bridge_matrix_leave on) declines it
//     through the room;
//   - a private message from an occupant (XEP-0045 §7.5) gets a portal of its own, named as
//     private with the nick and the room, from the occupant's ghost; the Matrix reply reaches
//     the occupant as a private message from alice's occupant; nothing reaches the room portal;
//   - in that private portal, corrections and files cross both ways (the file uploaded to
//     alice's server and sent as link + OOB, the occupant's file downloaded into Matrix), an
//     OMEMO private message is a notice (never its fallback body) and `omemo on` is refused;
//   - bridgev2's create-group command in a Matrix room with a contact's ghost makes that room the
//     portal of a new group chat (the contact invited; messages cross both ways);
//   - create_group through the provisioning API makes a members-only, non-anonymous, persistent
//     room on the account's MUC service with its name, the chosen contact a member who gets a
//     mediated invitation and can enter, while someone else cannot; its portal is the Matrix room;
//   - invitations left unanswered across a bridge restart: accepting one joins its
//     password-protected room with the invitation's password, rejecting a mediated one declines it.
//   - a Matrix leave of a portal stamped before a new invitation arrived, but delivered after it,
//     neither declines nor forgets that invitation, and accepting its invite joins.
func TestInvitations(t *testing.T) {
	for _, server := range []string{"prosody", "ejabberd"} {
		t.Run(server, func(t *testing.T) {
			t.Parallel()
			runInvitations(t, server)
		})
	}
}

func runInvitations(t *testing.T, server string) {
	s := newStackOn(t, server, "sqlite", testenv.ProsodyOptions{UploadHTTPS: true}, func(c *harness.BridgeConfig) {
		c.Set = map[string]any{"bridge.bridge_matrix_leave": true}
	})
	alice, alicePW := s.account(t, "alice")
	bob, bobPW := s.account(t, "bob")
	carol, carolPW := s.account(t, "carol")
	bobC := s.peer(t, bob, bobPW, "laptop")
	carolC := s.peer(t, carol, carolPW, "laptop")
	phone := s.peer(t, alice, alicePW, "phone")
	muc := s.xmpp.MUCDomain()
	open := jid.MustParse("openinvite@" + muc)
	closed := jid.MustParse("closedinvite@" + muc)
	strangers := jid.MustParse("strangers@" + muc)
	declined := jid.MustParse("declined@" + muc)
	barrier := jid.MustParse("barrier@" + muc)
	pwRoom := jid.MustParse("pwinvite@" + muc)
	laterDecl := jid.MustParse("declinedlater@" + muc)
	lateLeave := jid.MustParse("lateleave@" + muc)
	// Occupants may invite (ejabberd's default forbids it).
	createRoom(t, bobC, open, "bob", map[string]string{"muc#roomconfig_persistentroom": "1", "muc#roomconfig_allowinvites": "1"})
	createRoom(t, bobC, closed, "bob", map[string]string{"muc#roomconfig_persistentroom": "1", "muc#roomconfig_membersonly": "1"})
	createRoom(t, bobC, declined, "bob", map[string]string{"muc#roomconfig_persistentroom": "1", "muc#roomconfig_membersonly": "1"})
	createRoom(t, bobC, barrier, "bob", map[string]string{"muc#roomconfig_persistentroom": "1"})
	createRoom(t, carolC, strangers, "carol", map[string]string{"muc#roomconfig_persistentroom": "1"})
	const invitePW = "letmein77"
	createRoom(t, bobC, pwRoom, "bob", map[string]string{
		"muc#roomconfig_persistentroom":        "1",
		"muc#roomconfig_passwordprotectedroom": "1",
		"muc#roomconfig_roomsecret":            invitePW,
	})
	createRoom(t, bobC, laterDecl, "bob", map[string]string{"muc#roomconfig_persistentroom": "1", "muc#roomconfig_membersonly": "1"})
	createRoom(t, bobC, lateLeave, "bob", map[string]string{"muc#roomconfig_persistentroom": "1", "muc#roomconfig_membersonly": "1"})
	ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
	defer cancel()
	// bob is a contact of alice's; carol is not.
	if err := phone.SetRosterName(ctx, bob, "Bob"); err != nil {
		t.Fatal(err)
	}
	user := s.matrixUser(t, "mxinv")
	mgmt := s.loginUser(ctx, t, user, alice, alicePW)
	bs := &bookmarkScenario{stack: s, user: user, mgmt: mgmt, alice: alice, bobC: bobC, phone: phone}

	var (
		openPortal id.RoomID
		pm         id.RoomID // the private portal with bob's occupant in open
		pmFirstID  string    // the id of bob's first private message
		pmReply    id.EventID
		pmReplyID  string      // the XMPP id of the Matrix reply, as bob got it
		rejected   []id.RoomID // portals whose invite the user rejected
	)
	t.Run("DirectInvitationJoins", func(t *testing.T) {
		cur := bobC.PresenceCursor()
		sendRaw(t, bobC, fmt.Sprintf(`<message xmlns="jabber:client" to=%q id="inv-%d"><x xmlns="jabber:x:conference" jid=%q reason="plans for Saturday"/></message>`,
			alice.String(), time.Now().UnixNano(), open.String()))
		start := time.Now()
		openPortal = bs.waitPortal(t, open)
		bs.waitOccupant(t, cur, open, "")
		t.Logf("direct invitation -> Matrix invite accepted -> in the room: %v", time.Since(start).Round(time.Millisecond))
		// Named after the room (the inviter's ghost, put in the portal with the invitation,
		// leaves it again once the room's occupant list says who is there).
		var name event.RoomNameEventContent
		waitState(t, user, openPortal, event.StateRoomName, "", &name, func() bool { return name.Name == open.Localpart() })
	})
	t.Run("MediatedInvitationJoinsMembersOnly", func(t *testing.T) {
		cur := bobC.PresenceCursor()
		sendRaw(t, bobC, fmt.Sprintf(`<message xmlns="jabber:client" to=%q id="minv-%d"><x xmlns="http://jabber.org/protocol/muc#user"><invite to=%q><reason>members only</reason></invite></x></message>`,
			closed.String(), time.Now().UnixNano(), alice.String()))
		bs.waitPortal(t, closed)
		bs.waitOccupant(t, cur, closed, "")
	})
	t.Run("MatrixLeaveLeavesRoom", func(t *testing.T) {
		// With bridge_matrix_leave on, leaving the portal leaves the XMPP room and clears the
		// bookmark's autojoin (accepting the invitation bookmarked it).
		bs.waitBookmark(t, closed, true)
		ctx, cancel := stepCtx()
		defer cancel()
		got := s.query(t, "SELECT mxid FROM portal WHERE id = ?", "muc:"+closed.String())
		if len(got) != 1 {
			t.Fatalf("no portal of %s", closed)
		}
		cur := bobC.PresenceCursor()
		if _, err := user.Client.LeaveRoom(ctx, id.RoomID(got[0])); err != nil {
			t.Fatal(err)
		}
		bs.waitOccupant(t, cur, closed, "unavailable")
		bs.waitBookmark(t, closed, false)
		bs.waitNoSavedRoom(t, closed)
	})
	t.Run("InvitedAgainAfterMatrixLeave", func(t *testing.T) {
		// The portal is kept and the user has left it: the new invitation invites the user to
		// the same Matrix room again, and accepting joins.
		got := s.query(t, "SELECT mxid FROM portal WHERE id = ?", "muc:"+closed.String())
		if len(got) != 1 {
			t.Fatalf("no portal of %s", closed)
		}
		portal := id.RoomID(got[0])
		// The member sync of the join may still have been running when the user left, and
		// invited the user back: reject that invite, so that only the new invitation can
		// invite the user (the bridge is in neither the room nor its saved rooms by now).
		me := user.Client.UserID.String()
		var mem event.MemberEventContent
		if err := func() error {
			ctx, cancel := stepCtx()
			defer cancel()
			return user.Client.StateEvent(ctx, portal, event.StateMember, me, &mem)
		}(); err == nil && mem.Membership == event.MembershipInvite {
			t.Log("the join's member sync invited the user back after the leave: rejecting it")
			ctx, cancel := stepCtx()
			_, err := user.Client.LeaveRoom(ctx, portal)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
		}
		waitState(t, user, portal, event.StateMember, me, &mem, func() bool { return mem.Membership == event.MembershipLeave })
		cur := bobC.PresenceCursor()
		sendRaw(t, bobC, fmt.Sprintf(`<message xmlns="jabber:client" to=%q id="minv2-%d"><x xmlns="http://jabber.org/protocol/muc#user"><invite to=%q/></x></message>`,
			closed.String(), time.Now().UnixNano(), alice.String()))
		// The harness accepts only the first invite to a room: this one is accepted here.
		ctx, cancel := stepCtx()
		defer cancel()
		for {
			if _, err := user.Client.JoinRoomByID(ctx, portal); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("the user was not invited back into the kept portal %s", portal)
			case <-time.After(300 * time.Millisecond):
			}
		}
		bs.waitOccupant(t, cur, closed, "")
	})
	t.Run("StrangersInvitationIgnored", func(t *testing.T) {
		sendRaw(t, carolC, fmt.Sprintf(`<message xmlns="jabber:client" to=%q id="sinv-%d"><x xmlns="jabber:x:conference" jid=%q/></message>`,
			alice.String(), time.Now().UnixNano(), strangers.String()))
		// Barrier: bob's next invitation is handled after carol's.
		sendRaw(t, bobC, fmt.Sprintf(`<message xmlns="jabber:client" to=%q id="inv-%d"><x xmlns="jabber:x:conference" jid=%q/></message>`,
			alice.String(), time.Now().UnixNano(), barrier.String()))
		waitBridgeLog(t, s, "Invited to a group chat", barrier.String())
		if got := s.query(t, "SELECT mxid FROM portal WHERE id = ?", "muc:"+strangers.String()); len(got) != 0 {
			t.Errorf("a stranger's invitation made a portal: %q", got)
		}
	})
	t.Run("InviteGhostSendsMediatedInvitation", func(t *testing.T) {
		if openPortal == "" {
			t.Fatal("needs the portal of DirectInvitationJoins")
		}
		// carol's ghost exists once she has written to alice.
		ctx, cancel := stepCtx()
		defer cancel()
		if err := carolC.SendChat(ctx, alice, fmt.Sprintf("hi-%d", time.Now().UnixNano()), "", "hello alice"); err != nil {
			t.Fatal(err)
		}
		if _, err := user.FindRoomWith(ctx, s.ghost(carol)); err != nil {
			t.Fatalf("carol's ghost never appeared: %v", err)
		}
		cur := carolC.Cursor()
		if _, err := user.Client.InviteUser(ctx, openPortal, &mautrix.ReqInviteUser{UserID: s.ghost(carol), Reason: "join us"}); err != nil {
			t.Fatal(err)
		}
		m, _, err := carolC.WaitMessage(ctx, cur, func(m harness.ReceivedMessage) bool { return m.From == open.String() && m.Invite })
		if err != nil {
			t.Fatalf("carol got no invitation from %s: %v", open, err)
		}
		if !strings.Contains(m.InviteFrom, "alice") {
			t.Errorf("the invitation is from %q, want alice (her JID or her occupant)", m.InviteFrom)
		}
	})
	t.Run("RejectDeclinesMediated", func(t *testing.T) {
		// The harness user accepts invites after JoinDelay: this one is rejected first.
		user.SetJoinDelay(time.Hour)
		defer user.SetJoinDelay(harness.DefaultJoinDelay)
		cur := bobC.Cursor()
		sendRaw(t, bobC, fmt.Sprintf(`<message xmlns="jabber:client" to=%q id="minv-%d"><x xmlns="http://jabber.org/protocol/muc#user"><invite to=%q/></x></message>`,
			declined.String(), time.Now().UnixNano(), alice.String()))
		waitBridgeLog(t, s, "Invited to a group chat", declined.String(), "kind=mediated")
		ctx, cancel := stepCtx()
		defer cancel()
		var portal id.RoomID
		for portal == "" || !user.Invited(portal) {
			if got := s.query(t, "SELECT mxid FROM portal WHERE id = ? AND mxid IS NOT NULL", "muc:"+declined.String()); len(got) == 1 {
				portal = id.RoomID(got[0])
			}
			select {
			case <-ctx.Done():
				t.Fatalf("the user was not invited to a portal of the declined room (%q)", portal)
			case <-time.After(300 * time.Millisecond):
			}
		}
		if _, err := user.Client.LeaveRoom(ctx, portal); err != nil {
			t.Fatal(err)
		}
		rejected = append(rejected, portal)
		m, _, err := bobC.WaitMessage(ctx, cur, func(m harness.ReceivedMessage) bool { return m.From == declined.String() && m.Decline })
		if err != nil {
			t.Fatalf("bob got no decline through %s: %v", declined, err)
		}
		if !strings.Contains(m.DeclineFrom, "alice") {
			t.Errorf("the decline is from %q, want alice", m.DeclineFrom)
		}
		// alice did not join the room.
		if n := s.bridge.CountLog("Joined the group chat of an accepted invitation", declined.String()); n != 0 {
			t.Errorf("the bridge joined the declined room")
		}
	})
	t.Run("PrivateMessagesWithOccupant", func(t *testing.T) {
		if openPortal == "" {
			t.Fatal("needs the room of DirectInvitationJoins")
		}
		ctx, cancel := stepCtx()
		defer cancel()
		body := uniq("psst, only for you")
		pmFirstID = fmt.Sprintf("pm-%d", time.Now().UnixNano())
		sendRaw(t, bobC, fmt.Sprintf(`<message xmlns="jabber:client" type="chat" to="%s/alice" id=%q><body>%s</body><x xmlns="http://jabber.org/protocol/muc#user"/></message>`,
			open, pmFirstID, body))
		occGhost := harness.GhostMXID("muc:"+open.String()+"/bob", "localhost")
		for pm == "" {
			if got := s.query(t, "SELECT mxid FROM portal WHERE id = ? AND mxid IS NOT NULL", "pm:"+open.String()+"/bob"); len(got) == 1 {
				pm = id.RoomID(got[0])
			}
			select {
			case <-ctx.Done():
				t.Fatal("no private portal for bob's occupant")
			case <-time.After(300 * time.Millisecond):
			}
		}
		evt, _, err := user.WaitEvent(ctx, pm, 0, harness.IsMessage("", body))
		if err != nil {
			t.Fatalf("the private message never reached its portal: %v", err)
		}
		if evt.Sender != occGhost {
			t.Errorf("the private message came from %s, want the occupant ghost %s", evt.Sender, occGhost)
		}
		var name event.RoomNameEventContent
		waitState(t, user, pm, event.StateRoomName, "", &name, func() bool { return name.Name == "bob (private, "+open.String()+")" })
		// Not in the room's portal, and no 1:1 portal with the room.
		if n := countBodies(t, user, openPortal, body); n != 0 {
			t.Errorf("the private message reached the room's portal %d times", n)
		}
		if got := s.query(t, "SELECT id FROM portal WHERE id = ?", open.String()); len(got) != 0 {
			t.Errorf("a 1:1 portal with the room exists: %q", got)
		}
		// Another occupant choosing the same message id: its own message in
		// its own portal (the message ID names the nick), not taken for bob's.
		joinRoomAs(t, ctx, carolC, open, "carol")
		carolBody := uniq("carol's private word, same id")
		sendRaw(t, carolC, fmt.Sprintf(`<message xmlns="jabber:client" type="chat" to="%s/alice" id=%q><body>%s</body><x xmlns="http://jabber.org/protocol/muc#user"/></message>`,
			open, pmFirstID, carolBody))
		var carolPM id.RoomID
		for carolPM == "" {
			if got := s.query(t, "SELECT mxid FROM portal WHERE id = ? AND mxid IS NOT NULL", "pm:"+open.String()+"/carol"); len(got) == 1 {
				carolPM = id.RoomID(got[0])
			}
			select {
			case <-ctx.Done():
				t.Fatal("no private portal for carol's occupant, whose message has the id of bob's")
			case <-time.After(300 * time.Millisecond):
			}
		}
		if _, _, err := user.WaitEvent(ctx, carolPM, 0, harness.IsMessage("", carolBody)); err != nil {
			t.Fatalf("carol's private message with bob's id never reached her portal: %v", err)
		}
		if n := countBodies(t, user, pm, carolBody); n != 0 {
			t.Errorf("carol's private message reached bob's private portal %d times", n)
		}
		reply := uniq("private reply from matrix")
		cur := bobC.Cursor()
		resp, err := user.Client.SendText(ctx, pm, reply)
		if err != nil {
			t.Fatal(err)
		}
		pmReply = resp.EventID
		m, _, err := bobC.WaitMessage(ctx, cur, bodyIs(reply))
		if err != nil {
			t.Fatalf("bob did not get the private reply: %v", err)
		}
		pmReplyID = m.ID
		if want := open.String() + "/alice"; m.From != want || m.Type != "chat" {
			t.Errorf("bob got the private reply from %q as %q, want chat from %s", m.From, m.Type, want)
		}
		if n := countBodies(t, user, openPortal, reply); n != 0 {
			t.Errorf("the private reply reached the room's portal %d times", n)
		}
	})
	t.Run("PrivateFilesCorrectionsOMEMO", func(t *testing.T) {
		if pm == "" || pmReplyID == "" {
			t.Fatal("needs the private portal of PrivateMessagesWithOccupant")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*stepTimeout)
		defer cancel()
		occGhost := harness.GhostMXID("muc:"+open.String()+"/bob", "localhost")
		alicePM := open.String() + "/alice"
		web := trustingClient(t, s.xmpp.CertFile())
		const marker = `<x xmlns="http://jabber.org/protocol/muc#user"/>`

		// The occupant corrects its private message: an edit of it on Matrix.
		orig, _, err := user.WaitEvent(ctx, pm, 0, func(evt *event.Event) bool { return evt.Sender == occGhost && evt.Type == event.EventMessage })
		if err != nil {
			t.Fatal(err)
		}
		fixed := uniq("psst, corrected")
		sendRaw(t, bobC, fmt.Sprintf(`<message xmlns="jabber:client" type="chat" to=%q id="pmfix-%d"><body>%s</body><replace xmlns="urn:xmpp:message-correct:0" id=%q/>%s</message>`,
			alicePM, time.Now().UnixNano(), fixed, pmFirstID, marker))
		waitEditOf(t, user, pm, orig.ID, occGhost, fixed)

		// A Matrix edit of our reply: a correction to the occupant.
		edited := uniq("private reply, edited")
		content := &event.MessageEventContent{MsgType: event.MsgText, Body: edited}
		content.SetEdit(pmReply)
		cur := bobC.Cursor()
		if _, err := user.Client.SendMessageEvent(ctx, pm, event.EventMessage, content); err != nil {
			t.Fatal(err)
		}
		m, _, err := bobC.WaitMessage(ctx, cur, func(m harness.ReceivedMessage) bool { return m.Replace != "" })
		if err != nil {
			t.Fatalf("bob got no private correction: %v", err)
		}
		if m.Replace != pmReplyID || m.Body != edited || m.From != alicePM || m.Type != "chat" {
			t.Errorf("bob got %q replacing %q from %s (%s), want %q replacing %q from %s (chat)", m.Body, m.Replace, m.From, m.Type, edited, pmReplyID, alicePM)
		}

		// A Matrix file: uploaded to alice's server, its link with OOB to the occupant.
		data := []byte(uniq("a private file's content"))
		cur = bobC.Cursor()
		sendMatrixFile(ctx, t, user, pm, data, "private.txt", "text/plain", event.MsgFile)
		m, _, err = bobC.WaitMessage(ctx, cur, func(m harness.ReceivedMessage) bool { return m.OOB != "" })
		if err != nil {
			t.Fatalf("bob got no private file: %v", err)
		}
		if m.From != alicePM || m.Type != "chat" || m.Body != m.OOB {
			t.Errorf("bob got the file %q (body %q) from %s (%s), want a link from %s (chat)", m.OOB, m.Body, m.From, m.Type, alicePM)
		}
		if got := httpGet(ctx, t, web, m.OOB); !bytes.Equal(got, data) {
			t.Errorf("the shared file holds %q, want %q", got, data)
		}

		// The occupant's file: downloaded into the private portal.
		theirs := []byte(uniq("the occupant's file"))
		getURL := peerUpload(ctx, t, bobC, web, "theirs.bin", "application/octet-stream", theirs)
		mcur := user.Cursor(pm)
		sendRaw(t, bobC, fmt.Sprintf(`<message xmlns="jabber:client" type="chat" to=%q id="pmfile-%d"><body>%s</body><x xmlns="jabber:x:oob"><url>%s</url></x>%s</message>`,
			alicePM, time.Now().UnixNano(), getURL, getURL, marker))
		evt, _, err := user.WaitEvent(ctx, pm, mcur, func(evt *event.Event) bool {
			return evt.Sender == occGhost && evt.Type == event.EventMessage && evt.Content.AsMessage().URL != ""
		})
		if err != nil {
			t.Fatalf("the occupant's file never reached the private portal: %v", err)
		}
		if got := matrixDownload(ctx, t, user, evt.Content.AsMessage()); !bytes.Equal(got, theirs) {
			t.Errorf("the file in the private portal holds %q, want %q", got, theirs)
		}

		// An OMEMO private message: a notice, never its fallback body.
		fallback := uniq("omemo fallback body")
		mcur = user.Cursor(pm)
		sendRaw(t, bobC, fmt.Sprintf(`<message xmlns="jabber:client" type="chat" to=%q id="pmomemo-%d"><body>%s</body>`+
			`<encrypted xmlns="urn:xmpp:omemo:2"><header sid="1"><keys jid="alice@localhost"><key rid="2">AAAA</key></keys></header><payload>AAAA</payload></encrypted>%s</message>`,
			alicePM, time.Now().UnixNano(), fallback, marker))
		if _, _, err := user.WaitEvent(ctx, pm, mcur, func(evt *event.Event) bool {
			return strings.Contains(harness.Body(evt), "OMEMO-encrypted private message")
		}); err != nil {
			t.Fatalf("no notice of the OMEMO private message: %v", err)
		}
		if n := countBodies(t, user, pm, fallback); n != 0 {
			t.Errorf("the OMEMO fallback body reached Matrix %d times", n)
		}
		// Encryption cannot be turned on here: refused with the reason.
		answer, err := user.Command(ctx, pm, s.bot, "!xmpp omemo on", nil)
		if err != nil || !strings.Contains(answer, "cannot be OMEMO-encrypted") {
			t.Errorf("omemo on in the private portal: %q, %v", answer, err)
		}
	})
	t.Run("InvitedAgainWhileInPortal", func(t *testing.T) {
		// After `leave` the user is still in the kept portal: the invitation is a notice there,
		// and `join` in the portal enters the room.
		if openPortal == "" {
			t.Fatal("needs the portal of DirectInvitationJoins")
		}
		cctx, ccancel := context.WithTimeout(context.Background(), 2*stepTimeout)
		defer ccancel()
		if answer, err := user.Command(cctx, mgmt, s.bot, "leave "+open.String(), nil); err != nil || !strings.HasPrefix(answer, "Left ") {
			t.Fatalf("leave: %q, %v", answer, err)
		}
		cur := user.Cursor(openPortal)
		sendRaw(t, bobC, fmt.Sprintf(`<message xmlns="jabber:client" to=%q id="inv3-%d"><x xmlns="jabber:x:conference" jid=%q reason="come back"/></message>`,
			alice.String(), time.Now().UnixNano(), open.String()))
		ctx, cancel := stepCtx()
		defer cancel()
		evt, _, err := user.WaitEvent(ctx, openPortal, cur, func(evt *event.Event) bool {
			return strings.Contains(harness.Body(evt), "invited you to this group chat again (come back)")
		})
		if err != nil {
			t.Fatalf("no notice of the invitation in the kept portal: %v", err)
		}
		t.Logf("notice: %q", harness.Body(evt))
		pcur := bobC.PresenceCursor()
		if answer, err := user.Command(cctx, openPortal, s.bot, "!xmpp join "+open.String(), nil); err != nil || !strings.Contains(answer, "Joined ") {
			t.Fatalf("join in the portal: %q, %v", answer, err)
		}
		bs.waitOccupant(t, pcur, open, "")
	})
	t.Run("CreateGroup", func(t *testing.T) {
		ctx, cancel := stepCtx()
		defer cancel()
		cur := bobC.Cursor()
		start := time.Now()
		room, portalID, failed, err := harness.CreateGroup(ctx, s.cfg, user.UserID(), alice.String(), "room", map[string]any{
			"participants": []string{bob.String()},
			"name":         map[string]string{"name": "Trip planning"},
			"topic":        map[string]string{"topic": "where to go"},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("create_group answered in %v: room %s, portal %s, failed %v", time.Since(start).Round(time.Millisecond), room, portalID, failed)
		if room == "" || len(failed) != 0 || !strings.HasPrefix(portalID, "muc:trip-planning-") || !strings.HasSuffix(portalID, "@"+muc) {
			t.Fatalf("create_group: room %q, portal %q, failed %v", room, portalID, failed)
		}
		created := jid.MustParse(strings.TrimPrefix(portalID, "muc:"))
		info, err := disco.GetInfo(ctx, "", created, carolC.Session)
		if err != nil {
			t.Fatal(err)
		}
		var features []string
		for _, f := range info.Features {
			features = append(features, f.Var)
		}
		for _, want := range []string{"muc_membersonly", "muc_nonanonymous", "muc_persistent"} {
			if !slices.Contains(features, want) {
				t.Errorf("the created room lacks %s: %v", want, features)
			}
		}
		// bob, chosen as member, is invited through the room and may enter.
		m, _, err := bobC.WaitMessage(ctx, cur, func(m harness.ReceivedMessage) bool { return m.From == created.String() && m.Invite })
		if err != nil {
			t.Fatalf("bob got no invitation to %s: %v", created, err)
		}
		t.Logf("bob's invitation: %q", m.Body)
		joinRoomAs(t, ctx, bobC, created, "bob")
		if _, err := user.FindRoomWith(ctx, s.ghost(bob)); err != nil {
			t.Fatal(err)
		}
		resp, err := user.Client.JoinedMembers(ctx, room)
		for err == nil {
			if _, ok := resp.Joined[s.ghost(bob)]; ok {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("bob's ghost never joined the created group's portal %s", room)
			case <-time.After(300 * time.Millisecond):
			}
			resp, err = user.Client.JoinedMembers(ctx, room)
		}
		if err != nil {
			t.Fatal(err)
		}
		// carol is not a member.
		pcur := carolC.PresenceCursor()
		sendRaw(t, carolC, fmt.Sprintf(`<presence xmlns="jabber:client" to="%s/carol"><x xmlns="http://jabber.org/protocol/muc"/></presence>`, created))
		pr, err := carolC.WaitPresence(ctx, pcur, func(p harness.ReceivedPresence) bool { return strings.HasPrefix(p.From, created.String()) })
		if err != nil {
			t.Fatal(err)
		}
		if pr.Type != "error" {
			t.Errorf("carol, not a member, entered the created room: %+v", pr)
		}
		// A message crosses both ways.
		body := uniq("hello in the new group")
		sendGroupchat(t, ctx, bobC, created, body)
		if _, _, err := user.WaitEvent(ctx, room, 0, harness.IsMessage(s.ghost(bob), body)); err != nil {
			t.Fatalf("bob's message did not reach the portal: %v", err)
		}
		// OMEMO-capable: the bridge lets the portal be encrypted.
		answer, err := user.Command(ctx, room, s.bot, "!xmpp omemo on", nil)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(answer, "hides real JIDs") || strings.Contains(answer, "not members-only") {
			t.Errorf("omemo on in the created group: %q", answer)
		}
		if meta := s.query(t, "SELECT metadata FROM portal WHERE mxid = ?", room.String()); len(meta) != 1 || !strings.Contains(meta[0], `"omemo":true`) {
			t.Errorf("portal metadata after omemo on: %q (the bot said %q)", meta, answer)
		}
	})
	t.Run("CreateGroupCommand", func(t *testing.T) {
		// bridgev2's create-group in a Matrix room with a contact's ghost in it: that room becomes
		// the portal of a new XMPP group chat.
		ctx, cancel := context.WithTimeout(context.Background(), 2*stepTimeout)
		defer cancel()
		resp, err := user.Client.CreateRoom(ctx, &mautrix.ReqCreateRoom{
			Preset: "private_chat",
			Name:   "Matrix-made group",
			Invite: []id.UserID{s.bot, s.ghost(bob)},
			PowerLevelOverride: &event.PowerLevelsEventContent{Users: map[id.UserID]int{
				user.UserID(): 100, s.bot: 100,
			}},
		})
		if err != nil {
			t.Fatal(err)
		}
		for {
			members, err := user.Client.JoinedMembers(ctx, resp.RoomID)
			if err == nil {
				if _, ok := members.Joined[s.bot]; ok {
					break
				}
			}
			select {
			case <-ctx.Done():
				t.Fatal("the bot never joined the Matrix room")
			case <-time.After(300 * time.Millisecond):
			}
		}
		cur := bobC.Cursor()
		// The bot greets a group room it joins ("Hello, I'm a … bridge bot"), at times only
		// after the command was sent: that greeting is not the command's answer.
		answer, err := user.Command(ctx, resp.RoomID, s.bot, "!xmpp create-group", func(body string) bool {
			return !harness.IsStateNotice(body) && !strings.HasPrefix(body, "Hello, I'm a ")
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("create-group answered %q", answer)
		ids := s.query(t, "SELECT id FROM portal WHERE mxid = ?", resp.RoomID.String())
		if len(ids) != 1 || !strings.HasPrefix(ids[0], "muc:matrix-made-group-") {
			t.Fatalf("portal of the Matrix room: %q (the bot said %q)", ids, answer)
		}
		created := jid.MustParse(strings.TrimPrefix(ids[0], "muc:"))
		if _, _, err := bobC.WaitMessage(ctx, cur, func(m harness.ReceivedMessage) bool { return m.From == created.String() && m.Invite }); err != nil {
			t.Fatalf("bob got no invitation to %s: %v", created, err)
		}
		joinRoomAs(t, ctx, bobC, created, "bob")
		body := uniq("hello in the matrix-made group")
		sendGroupchat(t, ctx, bobC, created, body)
		if _, _, err := user.WaitEvent(ctx, resp.RoomID, 0, harness.IsMessage(s.ghost(bob), body)); err != nil {
			t.Fatalf("bob's message did not reach the Matrix room: %v", err)
		}
		reply := uniq("matrix answer in the matrix-made group")
		mcur := bobC.Cursor()
		if _, err := user.Client.SendText(ctx, resp.RoomID, reply); err != nil {
			t.Fatal(err)
		}
		if _, _, err := bobC.WaitMessage(ctx, mcur, bodyIs(reply)); err != nil {
			t.Fatalf("the Matrix message did not reach the group: %v", err)
		}
	})
	t.Run("PendingInvitationsSurviveRestart", func(t *testing.T) {
		// Two invitations left unanswered while the bridge restarts: accepting the direct one
		// afterwards joins its password-protected room with the invitation's password, and
		// rejecting the mediated one declines it through the room.
		user.SetJoinDelay(time.Hour)
		defer user.SetJoinDelay(harness.DefaultJoinDelay)
		sendRaw(t, bobC, fmt.Sprintf(`<message xmlns="jabber:client" to=%q id="pinv-%d"><x xmlns="jabber:x:conference" jid=%q password=%q/></message>`,
			alice.String(), time.Now().UnixNano(), pwRoom.String(), invitePW))
		sendRaw(t, bobC, fmt.Sprintf(`<message xmlns="jabber:client" to=%q id="pminv-%d"><x xmlns="http://jabber.org/protocol/muc#user"><invite to=%q/></x></message>`,
			laterDecl.String(), time.Now().UnixNano(), alice.String()))
		pwPortal := waitInvitedPortal(t, s, user, pwRoom)
		declPortal := waitInvitedPortal(t, s, user, laterDecl)
		meta := s.query(t, "SELECT metadata FROM user_login WHERE id = ?", alice.String())
		if len(meta) != 1 || !strings.Contains(meta[0], `"invites"`) || strings.Contains(meta[0], invitePW) {
			t.Fatalf("the login metadata does not keep the invitations with the password sealed: %q", meta)
		}
		if err := s.bridge.Stop(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.bridge.Start(ctx); err != nil {
			t.Fatal(err)
		}
		cur := bobC.Cursor()
		if _, err := user.Client.LeaveRoom(ctx, declPortal); err != nil {
			t.Fatal(err)
		}
		rejected = append(rejected, declPortal)
		if _, _, err := bobC.WaitMessage(ctx, cur, func(m harness.ReceivedMessage) bool { return m.From == laterDecl.String() && m.Decline }); err != nil {
			t.Fatalf("bob got no decline through %s after the restart: %v", laterDecl, err)
		}
		pcur := bobC.PresenceCursor()
		if _, err := user.Client.JoinRoomByID(ctx, pwPortal); err != nil {
			t.Fatal(err)
		}
		bs.waitOccupant(t, pcur, pwRoom, "")
		t.Logf("restart, decline and password join: %v", time.Since(start).Round(time.Millisecond))
		// Both answered: nothing is kept any more.
		ctx2, cancel2 := stepCtx()
		defer cancel2()
		for {
			meta := s.query(t, "SELECT metadata FROM user_login WHERE id = ?", alice.String())
			if len(meta) == 1 && !strings.Contains(meta[0], `"invites"`) {
				break
			}
			select {
			case <-ctx2.Done():
				t.Fatalf("answered invitations are still kept: %q", meta)
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
	t.Run("RejectedInvitesStayRejected", func(t *testing.T) {
		// Seconds and many bridged events after the rejections: the user was not invited
		// back into those portals (nothing was said there since).
		if len(rejected) != 2 {
			t.Fatalf("needs the rejected portals of RejectDeclinesMediated and PendingInvitationsSurviveRestart (%d)", len(rejected))
		}
		for _, room := range rejected {
			ctx, cancel := stepCtx()
			var mem event.MemberEventContent
			err := user.Client.StateEvent(ctx, room, event.StateMember, user.Client.UserID.String(), &mem)
			cancel()
			if err != nil || mem.Membership != event.MembershipLeave {
				t.Errorf("the user's membership in the rejected portal %s is %q (%v), want leave", room, mem.Membership, err)
			}
		}
	})
	t.Run("LateLeaveKeepsNewerInvitation", func(t *testing.T) { testLateLeaveKeepsInvitation(t, bs, lateLeave) })
}

// waitInvitedPortal waits until room's portal exists and the user is invited to it.
func waitInvitedPortal(t *testing.T, s *stack, user *harness.MatrixUser, room jid.JID) id.RoomID {
	t.Helper()
	ctx, cancel := stepCtx()
	defer cancel()
	var portal id.RoomID
	for portal == "" || !user.Invited(portal) {
		if got := s.query(t, "SELECT mxid FROM portal WHERE id = ? AND mxid IS NOT NULL", "muc:"+room.String()); len(got) == 1 {
			portal = id.RoomID(got[0])
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the user was not invited to a portal of %s (%q)", room, portal)
		case <-time.After(300 * time.Millisecond):
		}
	}
	return portal
}

func sendRaw(t *testing.T, p *harness.Peer, raw string) {
	t.Helper()
	ctx, cancel := stepCtx()
	defer cancel()
	if err := p.SendRaw(ctx, raw); err != nil {
		t.Fatal(err)
	}
}

// waitBridgeLog waits until one line of the bridge log holds all of substrings.
func waitBridgeLog(t *testing.T, s *stack, substrings ...string) {
	t.Helper()
	ctx, cancel := stepCtx()
	defer cancel()
	for {
		for _, line := range strings.Split(s.bridge.Log(), "\n") {
			all := true
			for _, sub := range substrings {
				all = all && strings.Contains(line, sub)
			}
			if all {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no bridge log line with %q", substrings)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

// TestBookmarks shows group chat bookmarks and password-protected rooms on real Prosody and
// ejabberd with Dendrite. alice's second XMPP client ("phone", a plain client speaking raw
// XEP-0402 / XEP-0048) is the other side:
//   - a XEP-0402 bookmark with autojoin and a XEP-0048 (private storage) one, both written
//     before the bridge login, are joined at login and become portals;
//   - a bookmark the phone publishes while the bridge is connected is joined at once (the
//     +notify push) and becomes a portal; the phone clearing its autojoin makes the bridge leave;
//   - the bot's join command writes an autojoin bookmark, its leave command clears autojoin;
//   - join with a wrong password gets a clear answer, with the right one it joins; the password
//     is stored sealed (not in the database in the clear) and used again after a restart.
func TestBookmarks(t *testing.T) {
	for _, server := range []string{"prosody", "ejabberd"} {
		t.Run(server, func(t *testing.T) {
			t.Parallel()
			runBookmarks(t, server)
		})
	}
}

type bookmarkScenario struct {
	*stack
	user  *harness.MatrixUser
	mgmt  id.RoomID
	alice jid.JID
	bobC  *harness.Peer
	phone *harness.Peer
}

func runBookmarks(t *testing.T, server string) {
	bs := &bookmarkScenario{stack: newStackOn(t, server, "sqlite", testenv.ProsodyOptions{})}
	alice, alicePW := bs.account(t, "alice")
	bob, bobPW := bs.account(t, "bob")
	bs.alice = alice
	bs.bobC = bs.peer(t, bob, bobPW, "laptop")
	bs.phone = bs.peer(t, alice, alicePW, "phone")
	muc := bs.xmpp.MUCDomain()
	early := jid.MustParse("early@" + muc)
	old := jid.MustParse("oldstyle@" + muc)
	later := jid.MustParse("later@" + muc)
	cmdRoom := jid.MustParse("bycommand@" + muc)
	staleRoom := jid.MustParse("staleinvite@" + muc)
	secret := jid.MustParse("secret@" + muc)
	for _, r := range []jid.JID{early, old, later, cmdRoom, staleRoom} {
		createRoom(t, bs.bobC, r, "bob", map[string]string{"muc#roomconfig_persistentroom": "1"})
	}
	const roomPW = "opensesame42"
	createRoom(t, bs.bobC, secret, "bob", map[string]string{
		"muc#roomconfig_persistentroom":        "1",
		"muc#roomconfig_passwordprotectedroom": "1",
		"muc#roomconfig_roomsecret":            roomPW,
	})

	// Before the login: one bookmark of each kind. The old-style one first: servers that keep
	// both in sync (Prosody's mod_bookmarks) replace all XEP-0402 bookmarks with a XEP-0048
	// storage write, as an old client means it.
	bs.storeLegacyBookmark(t, old)
	bs.publishBookmark(t, early, true)
	bs.user = bs.matrixUser(t, "mxbm")
	presCur := bs.bobC.PresenceCursor()
	ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
	defer cancel()
	bs.mgmt = bs.loginUser(ctx, t, bs.user, alice, alicePW)

	t.Run("BookmarksJoinedAtLogin", func(t *testing.T) {
		for _, r := range []jid.JID{early, old} {
			bs.waitOccupant(t, presCur, r, "")
			bs.waitPortal(t, r)
		}
	})
	var laterPortal id.RoomID
	t.Run("BookmarkAddedElsewhereJoins", func(t *testing.T) {
		cur := bs.bobC.PresenceCursor()
		start := time.Now()
		bs.publishBookmark(t, later, true)
		bs.waitOccupant(t, cur, later, "")
		laterPortal = bs.waitPortal(t, later)
		t.Logf("bookmark published -> portal joined in %v", time.Since(start).Round(time.Millisecond))
	})
	t.Run("AutojoinClearedElsewhereLeaves", func(t *testing.T) {
		cur := bs.bobC.PresenceCursor()
		bs.publishBookmark(t, later, false)
		bs.waitOccupant(t, cur, later, "unavailable")
		bs.waitNoSavedRoom(t, later)
		if laterPortal == "" {
			t.Fatal("needs the portal of BookmarkAddedElsewhereJoins")
		}
		ctx, cancel := stepCtx()
		defer cancel()
		if _, _, err := bs.user.WaitEvent(ctx, laterPortal, 0, func(evt *event.Event) bool {
			return strings.Contains(harness.Body(evt), "You left this group chat on another XMPP client")
		}); err != nil {
			t.Errorf("no notice in the portal that the room was left elsewhere: %v", err)
		}
	})
	t.Run("JoinCommandBookmarks", func(t *testing.T) {
		answer := bs.command(t, "join "+cmdRoom.String(), nil)
		if !strings.Contains(answer, "Joined "+cmdRoom.String()) || strings.Contains(answer, "could not be saved") {
			t.Fatalf("the bot said %q", answer)
		}
		bs.waitBookmark(t, cmdRoom, true)
	})
	t.Run("LeaveCommandClearsAutojoin", func(t *testing.T) {
		answer := bs.command(t, "leave "+cmdRoom.String(), nil)
		if !strings.HasPrefix(answer, "Left "+cmdRoom.String()) {
			t.Fatalf("the bot said %q", answer)
		}
		bs.waitBookmark(t, cmdRoom, false)
	})
	t.Run("AcceptAfterLeaveStaysOut", func(t *testing.T) {
		// The portal's invite (sent for the join command) accepted only after `leave`: the
		// bridge must not enter the room again, nor turn autojoin back on. Leaving the portal is
		// what the user said last; a notice there says how to join.
		bs.user.SetJoinDelay(time.Hour)
		defer bs.user.SetJoinDelay(harness.DefaultJoinDelay)
		if answer := bs.command(t, "join "+staleRoom.String(), nil); !strings.Contains(answer, "Joined "+staleRoom.String()) {
			t.Fatalf("join: the bot said %q", answer)
		}
		bs.waitBookmark(t, staleRoom, true)
		portal := waitInvitedPortal(t, bs.stack, bs.user, staleRoom)
		cur := bs.bobC.PresenceCursor()
		if answer := bs.command(t, "leave "+staleRoom.String(), nil); !strings.HasPrefix(answer, "Left "+staleRoom.String()) {
			t.Fatalf("leave: the bot said %q", answer)
		}
		bs.waitOccupant(t, cur, staleRoom, "unavailable")
		bs.waitBookmark(t, staleRoom, false)
		cur = bs.bobC.PresenceCursor()
		ctx, cancel := stepCtx()
		defer cancel()
		if _, err := bs.user.Client.JoinRoomByID(ctx, portal); err != nil {
			t.Fatalf("accepting the portal's invite: %v", err)
		}
		// Until the bridge has answered the accept: its notice, or alice in the room again.
		type answer struct {
			entered bool // alice's occupant came back, else the notice came
			err     error
		}
		answers := make(chan answer, 2)
		go func() {
			_, err := bs.bobC.WaitPresence(ctx, cur, func(p harness.ReceivedPresence) bool {
				return p.From == staleRoom.String()+"/alice" && p.Type == ""
			})
			answers <- answer{entered: true, err: err}
		}()
		go func() {
			_, _, err := bs.user.WaitEvent(ctx, portal, 0, func(evt *event.Event) bool {
				return strings.Contains(harness.Body(evt), "You left "+staleRoom.String())
			})
			answers <- answer{err: err}
		}()
		first := <-answers
		cancel()
		<-answers
		switch {
		case first.err != nil:
			t.Fatalf("neither a notice in the portal nor alice in %s after accepting the invite: %v", staleRoom, first.err)
		case first.entered:
			t.Fatalf("accepting the portal's invite after leave entered %s again", staleRoom)
		}
		bs.waitBookmark(t, staleRoom, false)
		if rooms := bs.savedRooms(t); slices.Contains(rooms, staleRoom.String()) {
			t.Errorf("the login keeps %s for rejoins again: %q", staleRoom, rooms)
		}
	})
	t.Run("PasswordRoom", func(t *testing.T) {
		if answer := bs.command(t, "join "+secret.String(), nil); !strings.Contains(answer, "needs a password") {
			t.Errorf("join without the password: the bot said %q", answer)
		}
		if answer := bs.command(t, "join "+secret.String()+" alice wrongpw", nil); !strings.Contains(answer, "refused the password") {
			t.Errorf("join with a wrong password: the bot said %q", answer)
		}
		cur := bs.bobC.PresenceCursor()
		good := roomPW
		if answer := bs.command(t, "join "+secret.String()+" alice "+good, nil); !strings.Contains(answer, "Joined "+secret.String()) {
			t.Fatalf("join with the password: the bot said %q", answer)
		}
		bs.waitOccupant(t, cur, secret, "")
		bs.waitPortal(t, secret)
		meta := bs.query(t, "SELECT metadata FROM user_login WHERE id = ?", alice.String())
		if len(meta) != 1 || strings.Contains(meta[0], good) || !strings.Contains(meta[0], "password_enc") {
			t.Errorf("the login metadata does not hold the room password sealed: %q", meta)
		}
		// Rejoined with the stored password after a restart.
		if err := bs.bridge.Stop(); err != nil {
			t.Fatal(err)
		}
		cur = bs.bobC.PresenceCursor()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := bs.bridge.Start(ctx); err != nil {
			t.Fatal(err)
		}
		bs.waitOccupant(t, cur, secret, "")
	})
}

func (bs *bookmarkScenario) command(t *testing.T, text string, match func(string) bool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*stepTimeout)
	defer cancel()
	answer, err := bs.user.Command(ctx, bs.mgmt, bs.bot, text, match)
	if err != nil {
		t.Fatal(err)
	}
	return answer
}

// sendIQ sends a raw IQ as the phone and returns the answer as text; an error answer fails t.
func (bs *bookmarkScenario) sendIQ(t *testing.T, raw string) string {
	t.Helper()
	ctx, cancel := stepCtx()
	defer cancel()
	resp, err := bs.phone.Session.SendIQ(ctx, xml.NewDecoder(strings.NewReader(raw)))
	if err != nil {
		t.Fatalf("IQ %s: %v", raw, err)
	}
	defer resp.Close()
	var b bytes.Buffer
	e := xml.NewEncoder(&b)
	if _, err := xmlstream.Copy(e, resp); err != nil {
		t.Fatal(err)
	}
	_ = e.Flush()
	if strings.Contains(b.String(), `type="error"`) {
		t.Fatalf("IQ %s answered %s", raw, b.String())
	}
	return b.String()
}

// publishBookmark publishes a XEP-0402 bookmark of room as a client does (publish-options as the
// XEP asks, without pubsub#max_items, which ejabberd refuses).
func (bs *bookmarkScenario) publishBookmark(t *testing.T, room jid.JID, autojoin bool) {
	t.Helper()
	bs.sendIQ(t, fmt.Sprintf(`<iq xmlns="jabber:client" type="set" id="bm-%d"><pubsub xmlns="http://jabber.org/protocol/pubsub">`+
		`<publish node="urn:xmpp:bookmarks:1"><item id=%q><conference xmlns="urn:xmpp:bookmarks:1" name="Phone bookmark" autojoin="%t">`+
		`<nick>alice</nick><extensions><pinned xmlns="urn:example:phone"/></extensions></conference></item></publish>`+
		`<publish-options><x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE" type="hidden"><value>http://jabber.org/protocol/pubsub#publish-options</value></field>`+
		`<field var="pubsub#persist_items"><value>true</value></field><field var="pubsub#access_model"><value>whitelist</value></field></x></publish-options>`+
		`</pubsub></iq>`, time.Now().UnixNano(), room.String(), autojoin))
}

// storeLegacyBookmark writes a XEP-0048 bookmark of room to private XML storage, as older clients do.
func (bs *bookmarkScenario) storeLegacyBookmark(t *testing.T, room jid.JID) {
	t.Helper()
	bs.sendIQ(t, fmt.Sprintf(`<iq xmlns="jabber:client" type="set" id="pv-%d"><query xmlns="jabber:iq:private"><storage xmlns="storage:bookmarks">`+
		`<conference jid=%q autojoin="true" name="Old client"><nick>alice</nick></conference>`+
		`<url name="Example" url="https://example.org/"/></storage></query></iq>`, time.Now().UnixNano(), room.String()))
}

// waitBookmark waits until the phone reads room's XEP-0402 bookmark with autojoin as wanted.
func (bs *bookmarkScenario) waitBookmark(t *testing.T, room jid.JID, autojoin bool) {
	t.Helper()
	ctx, cancel := stepCtx()
	defer cancel()
	var last string
	for {
		last = bs.sendIQ(t, fmt.Sprintf(`<iq xmlns="jabber:client" type="get" id="bmget-%d"><pubsub xmlns="http://jabber.org/protocol/pubsub">`+
			`<items node="urn:xmpp:bookmarks:1"/></pubsub></iq>`, time.Now().UnixNano()))
		i := strings.Index(last, `id="`+room.String()+`"`)
		if i >= 0 {
			item := last[i:]
			if j := strings.Index(item, "</item>"); j >= 0 {
				item = item[:j]
			}
			on := strings.Contains(item, `autojoin="true"`) || strings.Contains(item, `autojoin="1"`)
			if on == autojoin {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no bookmark of %s with autojoin=%t; the node holds %s", room, autojoin, last)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// waitOccupant waits until bob sees alice's occupant in room with presence type typ.
func (bs *bookmarkScenario) waitOccupant(t *testing.T, cur int, room jid.JID, typ string) {
	t.Helper()
	ctx, cancel := stepCtx()
	defer cancel()
	occ := room.String() + "/alice"
	if _, err := bs.bobC.WaitPresence(ctx, cur, func(p harness.ReceivedPresence) bool { return p.From == occ && p.Type == typ }); err != nil {
		t.Fatalf("bob never saw presence %q of %s: %v", typ, occ, err)
	}
}

// waitPortal waits until room has a portal that the Matrix user has joined.
func (bs *bookmarkScenario) waitPortal(t *testing.T, room jid.JID) id.RoomID {
	t.Helper()
	ctx, cancel := stepCtx()
	defer cancel()
	for {
		if ids := bs.query(t, "SELECT mxid FROM portal WHERE id = ? AND mxid IS NOT NULL", "muc:"+room.String()); len(ids) == 1 && ids[0] != "" {
			mxid := id.RoomID(ids[0])
			for _, r := range bs.user.JoinedRooms() {
				if r == mxid {
					return mxid
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no joined portal for %s", room)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// waitNoSavedRoom waits until the login no longer keeps room for rejoins.
func (bs *bookmarkScenario) waitNoSavedRoom(t *testing.T, room jid.JID) {
	t.Helper()
	ctx, cancel := stepCtx()
	defer cancel()
	for {
		rooms := bs.savedRooms(t)
		if !slices.Contains(rooms, room.String()) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the login still keeps %s: %q", room, rooms)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// savedRooms are the rooms the login keeps for rejoins (rooms in its metadata).
func (bs *bookmarkScenario) savedRooms(t *testing.T) []string {
	t.Helper()
	return loginSavedRooms(t, bs.stack, bs.alice)
}

// loginSavedRooms are the rooms login keeps for rejoins (rooms in its metadata).
func loginSavedRooms(t *testing.T, s *stack, login jid.JID) []string {
	t.Helper()
	meta := s.query(t, "SELECT metadata FROM user_login WHERE id = ?", login.String())
	if len(meta) != 1 {
		t.Fatalf("no login %s: %q", login, meta)
	}
	var m struct {
		Rooms []struct {
			JID string `json:"jid"`
		} `json:"rooms"`
	}
	if err := json.Unmarshal([]byte(meta[0]), &m); err != nil {
		t.Fatalf("login metadata %q: %v", meta[0], err)
	}
	var rooms []string
	for _, r := range m.Rooms {
		rooms = append(rooms, r.JID)
	}
	return rooms
}

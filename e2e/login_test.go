package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

func (sc *scenario) testLoginErrors(t *testing.T) {
	// A separate Matrix user, so that a broken login cannot touch the working one.
	u := sc.matrixUser(t, "mxloginerrors")
	ctx, cancel := stepCtx()
	defer cancel()
	room, err := u.OpenManagementRoom(ctx, sc.bot)
	if err != nil {
		t.Fatal(err)
	}
	noTLS := testenv.StartProsody(t, testenv.ProsodyOptions{NoTLS: true})
	plain := jid.MustParse(noTLS.CreateAccount(t, "plain", "plain-secret"))
	good := harness.LoginInput{JID: sc.alice.String(), Password: sc.alicePW, Server: sc.xmpp.Addr(), InsecureHost: "localhost"}
	cases := []struct {
		name string
		edit func(*harness.LoginInput)
		want string
	}{
		{"WrongPassword", func(in *harness.LoginInput) { in.Password = "definitely-not-" + sc.alicePW }, "Wrong password for " + sc.alice.String()},
		{"Unreachable", func(in *harness.LoginInput) { in.Server = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)) }, "Could not reach the XMPP server of localhost"},
		{"UntrustedCertificate", func(in *harness.LoginInput) { in.InsecureHost = "no" }, "certificate of the XMPP server of localhost is not trusted"},
		{"NoTLS", func(in *harness.LoginInput) {
			in.JID, in.Password, in.Server = plain.String(), "plain-secret", noTLS.Addr()
		}, "does not offer TLS"},
		{"BadJID", func(in *harness.LoginInput) { in.JID = "not a jid@@" }, "expected an address like alice@example.org"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := good
			tc.edit(&in)
			ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
			defer cancel()
			res, err := u.Login(ctx, room, sc.bot, in)
			got := res.Answer
			if err == nil {
				t.Fatalf("login succeeded: %q", got)
			}
			if got == "" {
				t.Fatal(err)
			}
			// An invalid value leaves the prompt open; end it for the next case.
			if strings.HasPrefix(got, "Invalid value") {
				if _, err := u.Command(ctx, room, sc.bot, "cancel", nil); err != nil {
					t.Fatal(err)
				}
			}
			if !strings.Contains(got, tc.want) {
				t.Fatalf("bot said %q, want it to contain %q", got, tc.want)
			}
			if strings.Contains(got, in.Password) {
				t.Errorf("the error repeats the password: %q", got)
			}
		})
	}
}

// testDirectTLS logs in over XEP-0368 direct TLS (tls://host:port) instead of STARTTLS.
func (sc *scenario) testDirectTLS(t *testing.T) {
	addr := sc.xmpp.DirectTLSAddr()
	if addr == "" {
		t.Fatal("the test XMPP server has no direct TLS port")
	}
	u := sc.matrixUser(t, "mxdirecttls")
	heidi, heidiPW := sc.account(t, "heidi")
	ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
	defer cancel()
	room, err := u.OpenManagementRoom(ctx, sc.bot)
	if err != nil {
		t.Fatal(err)
	}
	cur := u.Cursor(room)
	res, err := u.Login(ctx, room, sc.bot, harness.LoginInput{
		JID: heidi.String(), Password: heidiPW, Server: "tls://" + addr, InsecureHost: "localhost",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Answer, "Successfully logged in as "+heidi.String()) {
		t.Fatalf("bot said %q", res.Answer)
	}
	if _, _, err := u.WaitEvent(ctx, room, cur, harness.StateNotice(heidi.String(), "CONNECTED")); err != nil {
		t.Fatalf("no CONNECTED state notice for %s: %v", heidi, err)
	}
	body := uniq("to heidi over direct TLS")
	if err := sc.carolC.SendChat(ctx, heidi, "", "", body); err != nil {
		t.Fatal(err)
	}
	portal, err := u.FindRoomWith(ctx, sc.ghost(sc.carol), room)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := u.WaitEvent(ctx, portal, 0, harness.IsMessage(sc.ghost(sc.carol), body)); err != nil {
		t.Fatalf("%q did not reach heidi's portal: %v", body, err)
	}
	sc.heidi, sc.heidiUser, sc.heidiMgmt = heidi, u, room
}

func (sc *scenario) testSecondLogin(t *testing.T) {
	sc.needBobRoom(t)
	erin, erinPW := sc.account(t, "erin")
	frank, frankPW := sc.account(t, "frank")
	frankC := sc.peer(t, frank, frankPW, "laptop")
	mgmtCur := sc.user.Cursor(sc.mgmt)
	res, err := sc.login(t, sc.user, sc.mgmt, erin, erinPW)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Successfully logged in as " + erin.String(); !strings.Contains(res.Answer, want) {
		t.Fatalf("bot said %q, want %q", res.Answer, want)
	}
	ctx, cancel := stepCtx()
	defer cancel()
	// The new login's session is available (presence sent) once it reports CONNECTED: a
	// message sent before that would be the first login's archive catch-up's to find.
	if _, _, err := sc.user.WaitEvent(ctx, sc.mgmt, mgmtCur, harness.StateNotice(erin.String(), "CONNECTED")); err != nil {
		t.Errorf("no CONNECTED state notice for %s: %v", erin, err)
	}
	list, err := sc.user.Command(ctx, sc.mgmt, sc.bot, "list-logins", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range []jid.JID{sc.alice, erin} {
		if !strings.Contains(list, j.String()) {
			t.Errorf("list-logins = %q, missing %s", list, j)
		}
	}
	body := uniq("frank writes to erin")
	if err := frankC.SendChat(ctx, erin, "", "", body); err != nil {
		t.Fatal(err)
	}
	room := sc.waitGhostMessage(t, frank, body)
	reply := uniq("erin answers from matrix")
	cur := frankC.Cursor()
	if _, err := sc.user.Client.SendText(ctx, room, reply); err != nil {
		t.Fatal(err)
	}
	m, _, err := frankC.WaitMessage(ctx, cur, bodyIs(reply))
	if err != nil {
		t.Fatalf("frank did not receive the answer: %v", err)
	}
	if from, err := jid.Parse(m.From); err != nil || !from.Bare().Equal(erin) {
		t.Errorf("frank's answer came from %q, want %s", m.From, erin)
	}
	// The first login keeps working beside the second.
	more := uniq("bob again")
	if err := sc.bobC.SendChat(ctx, sc.alice, "", "", more); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sc.user.WaitEvent(ctx, sc.bobRoom, 0, harness.IsMessage(sc.ghost(sc.bob), more)); err != nil {
		t.Fatalf("alice's login stopped bridging after erin's login: %v", err)
	}
}

func (sc *scenario) testStartChat(t *testing.T) {
	sc.needLogin(t)
	ctx, cancel := stepCtx()
	defer cancel()
	got, err := sc.user.Command(ctx, sc.mgmt, sc.bot, "start-chat "+sc.dave.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, "Created chat with") {
		t.Fatalf("start-chat answered %q", got)
	}
	room, err := sc.user.FindRoomWith(ctx, sc.ghost(sc.dave), sc.mgmt)
	if err != nil {
		t.Fatal(err)
	}
	body := uniq("hello dave, from matrix")
	cur := sc.daveC.Cursor()
	if _, err := sc.user.Client.SendText(ctx, room, body); err != nil {
		t.Fatal(err)
	}
	m, _, err := sc.daveC.WaitMessage(ctx, cur, bodyIs(body))
	if err != nil {
		t.Fatalf("dave did not receive the message: %v", err)
	}
	if from, err := jid.Parse(m.From); err != nil || !from.Bare().Equal(sc.alice) {
		t.Errorf("dave's message came from %q, want %s", m.From, sc.alice)
	}
	// And dave's answer lands in the same room.
	answer := uniq("dave answers")
	if err := sc.daveC.SendChat(ctx, sc.alice, "", "", answer); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sc.user.WaitEvent(ctx, room, 0, harness.IsMessage(sc.ghost(sc.dave), answer)); err != nil {
		t.Fatalf("dave's answer did not reach the start-chat room: %v", err)
	}
}

func (sc *scenario) testContactList(t *testing.T) {
	sc.needLogin(t)
	ctx, cancel := stepCtx()
	defer cancel()
	contacts, err := harness.Contacts(ctx, sc.cfg, sc.user.UserID(), sc.alice.String())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	var bob *harness.Contact
	for i, c := range contacts {
		ids = append(ids, c.ID)
		if c.ID == sc.bob.String() {
			bob = &contacts[i]
		}
	}
	if bob == nil {
		t.Fatalf("bob is not in the contact list %v", ids)
	}
	if bob.Name != bobRosterName+" (XMPP)" || bob.MXID != sc.ghost(sc.bob) {
		t.Errorf("bob's contact entry = %+v, want name %q and MXID %s", *bob, bobRosterName+" (XMPP)", sc.ghost(sc.bob))
	}
	if slices.Contains(ids, sc.carol.String()) {
		t.Errorf("carol is listed although she is not in the roster: %v", ids)
	}
	// The same lookup from the bot.
	got, err := sc.user.Command(ctx, sc.mgmt, sc.bot, "resolve-identifier "+sc.bob.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, bobRosterName) {
		t.Errorf("resolve-identifier answered %q, want bob's roster name", got)
	}
}

// testRosterNameAcrossLogins: ghosts are shared by all logins, and bob is named only in alice's
// roster. A message from bob to another login (heidi, who has no roster entry for him) must not
// reset his ghost to the bare localpart.
func (sc *scenario) testRosterNameAcrossLogins(t *testing.T) {
	sc.needBobRoom(t)
	if sc.heidiUser == nil {
		t.Fatal("needs heidi's login from LoginDirectTLS, which failed")
	}
	ctx, cancel := stepCtx()
	defer cancel()
	body := uniq("bob writes to heidi")
	if err := sc.bobC.SendChat(ctx, sc.heidi, "", "", body); err != nil {
		t.Fatal(err)
	}
	portal, err := sc.heidiUser.FindRoomWith(ctx, sc.ghost(sc.bob), sc.heidiMgmt)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := sc.heidiUser.WaitEvent(ctx, portal, 0, harness.IsMessage(sc.ghost(sc.bob), body)); err != nil {
		t.Fatalf("%q did not reach heidi's portal: %v", body, err)
	}
	want := bobRosterName + " (XMPP)"
	resp, err := sc.user.Client.GetDisplayName(ctx, sc.ghost(sc.bob))
	if err != nil {
		t.Fatal(err)
	}
	if resp.DisplayName != want {
		t.Errorf("after bob wrote to heidi, his ghost is named %q, want alice's roster name %q", resp.DisplayName, want)
	}
}

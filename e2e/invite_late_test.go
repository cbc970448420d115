package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
)

// testLateLeaveKeepsInvitation: a Matrix leave of a room's portal that the homeserver stamped before
// a new invitation to the room arrived reaches the bridge only after it (an appservice transaction
// delivered late: the user rejected an earlier invite of the portal). It answered that earlier invite:
// the new mediated invitation is neither declined through the room nor forgotten, and accepting its
// invite joins; once joined, the same late leave does not leave the room. The late transactions
// are pushed to the bridge as the homeserver would send them.
func testLateLeaveKeepsInvitation(t *testing.T, bs *bookmarkScenario, room jid.JID) {
	user := bs.user
	user.SetJoinDelay(time.Hour)
	defer user.SetJoinDelay(harness.DefaultJoinDelay)
	stamped := time.Now().Add(-5 * time.Second)
	cur := bs.bobC.Cursor()
	sendRaw(t, bs.bobC, fmt.Sprintf(`<message xmlns="jabber:client" to=%q id="lateinv-%d"><x xmlns="http://jabber.org/protocol/muc#user"><invite to=%q/></x></message>`,
		room.String(), time.Now().UnixNano(), bs.alice.String()))
	portal := waitInvitedPortal(t, bs.stack, user, room)
	ctx, cancel := stepCtx()
	defer cancel()
	me := user.UserID().String()
	lateLeave := func() map[string]any {
		return map[string]any{
			"type": "m.room.member", "room_id": portal, "sender": me, "state_key": me,
			"event_id":         fmt.Sprintf("$lateleave%d:%s", time.Now().UnixNano(), user.UserID().Homeserver()),
			"origin_server_ts": stamped.UnixMilli(),
			"content":          map[string]any{"membership": "leave"},
		}
	}
	bs.pushEvents(ctx, t, lateLeave())
	// Until the bridge has handled the late leave: it keeps the invitation (its log), or declines it.
	type outcome struct {
		declined bool
		err      error
	}
	outcomes := make(chan outcome, 2)
	go func() {
		_, _, err := bs.bobC.WaitMessage(ctx, cur, func(m harness.ReceivedMessage) bool { return m.From == room.String() && m.Decline })
		outcomes <- outcome{declined: true, err: err}
	}()
	go func() {
		for ctx.Err() == nil {
			for _, line := range strings.Split(bs.bridge.Log(), "\n") {
				if strings.Contains(line, "Keeping an invitation that arrived after the Matrix answer") && strings.Contains(line, room.String()) {
					outcomes <- outcome{}
					return
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
		outcomes <- outcome{err: ctx.Err()}
	}()
	first := <-outcomes
	cancel()
	<-outcomes
	switch {
	case first.err != nil:
		t.Fatalf("the bridge neither kept nor declined the invitation to %s after the late leave: %v", room, first.err)
	case first.declined:
		t.Fatalf("a leave stamped before the invitation declined it through %s", room)
	}
	pcur := bs.bobC.PresenceCursor()
	jctx, jcancel := stepCtx()
	defer jcancel()
	for {
		if _, err := user.Client.JoinRoomByID(jctx, portal); err == nil {
			break
		}
		select {
		case <-jctx.Done():
			t.Fatalf("the user could not accept the invite of %s", portal)
		case <-time.After(300 * time.Millisecond):
		}
	}
	bs.waitOccupant(t, pcur, room, "")
	for !slices.Contains(bs.savedRooms(t), room.String()) {
		select {
		case <-jctx.Done():
			t.Fatalf("the login does not keep %s after accepting: %q", room, bs.savedRooms(t))
		case <-time.After(300 * time.Millisecond):
		}
	}
	// The same late leave once more, now that the room is joined: it is older than the join and
	// leaves nothing.
	pcur = bs.bobC.PresenceCursor()
	bs.pushEvents(jctx, t, lateLeave())
	waitBridgeLog(t, bs.stack, "Not leaving the group chat: the Matrix leave is from before the room was joined", room.String())
	lctx, lcancel := context.WithTimeout(jctx, 3*time.Second)
	defer lcancel()
	if _, err := bs.bobC.WaitPresence(lctx, pcur, func(p harness.ReceivedPresence) bool {
		return p.From == room.String()+"/alice" && p.Type == "unavailable"
	}); err == nil {
		t.Errorf("a leave stamped before the join left %s", room)
	}
	if !slices.Contains(bs.savedRooms(t), room.String()) {
		t.Errorf("a leave stamped before the join made the login forget %s", room)
	}
}

// pushEvents hands the bridge one appservice transaction with the timeline events evts, as the
// homeserver does.
func (bs *bookmarkScenario) pushEvents(ctx context.Context, t *testing.T, evts ...map[string]any) {
	t.Helper()
	pushTransaction(ctx, t, bs.cfg, "late", map[string]any{"events": evts})
}

// pushTransaction PUTs body as one appservice transaction (a fresh id named by kind) to the
// bridge, with the homeserver's token, and fails the test unless the bridge answers 200.
func pushTransaction(ctx context.Context, t *testing.T, cfg *harness.BridgeConfig, kind string, body map[string]any) {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("%s/_matrix/app/v1/transactions/%s-%d", cfg.AppserviceURL(), kind, time.Now().UnixNano())
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+hsTokenOf(t, cfg))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s transaction: HTTP %d", kind, resp.StatusCode)
	}
}

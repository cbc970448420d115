package portal

import (
	"context"
	"testing"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"mellium.im/xmpp/jid"
)

// TestChatInfo: each kind of chat gets its shape (direct or not, the user's
// is_direct invite, the other side joined, the name, the kind recorded in
// the portal's metadata); a chat with one's own account has one member.
func TestChatInfo(t *testing.T) {
	self := bridgev2.EventSender{IsFromMe: true, SenderLogin: "alice@example.org", Sender: "alice@example.org"}
	bob := bridgev2.ChatMember{EventSender: bridgev2.EventSender{Sender: "bob@example.org"}}
	// In a room the caller says who is in: the same account from two
	// clients is one ghost.
	bobIn := bob
	bobIn.Membership = event.MembershipJoin
	occ := jid.MustParse("room@muc.example.org/bob")
	topic := "plans"
	for _, tc := range []struct {
		name        string
		info        *bridgev2.ChatInfo
		wantType    database.RoomType
		wantName    string
		wantMembers []networkid.UserID
		wantDirect  bool
		wantKind    Kind
	}{
		{"1:1", DMInfo(self, bob), database.RoomTypeDM, "", []networkid.UserID{"alice@example.org", "bob@example.org"}, true, DM},
		{"1:1 with one's own account", DMInfo(self, bridgev2.ChatMember{EventSender: bridgev2.EventSender{Sender: self.Sender}}),
			database.RoomTypeDM, "", []networkid.UserID{"alice@example.org"}, true, DM},
		{"private with an occupant", PMInfo(occ, self, bridgev2.ChatMember{EventSender: bridgev2.EventSender{Sender: "muc:room@muc.example.org/bob"}}),
			database.RoomTypeDM, "bob (private, room@muc.example.org)", []networkid.UserID{"alice@example.org", "muc:room@muc.example.org/bob"}, true, PM},
		{"room we are in", RoomInfo("Room", &topic, RoomMembers(self, []bridgev2.ChatMember{bobIn, bobIn}, 3)),
			database.RoomTypeDefault, "Room", []networkid.UserID{"alice@example.org", "bob@example.org"}, false, MUC},
		{"room we are not in", RoomInfo("Room", nil, nil), database.RoomTypeDefault, "Room", nil, false, MUC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.info.Type == nil || *tc.info.Type != tc.wantType {
				t.Errorf("type %v, want %v", tc.info.Type, tc.wantType)
			}
			if got := ""; tc.info.Name != nil {
				got = *tc.info.Name
				if got != tc.wantName {
					t.Errorf("name %q, want %q", got, tc.wantName)
				}
			} else if tc.wantName != "" {
				t.Errorf("no name, want %q", tc.wantName)
			}
			if tc.wantMembers == nil {
				if tc.info.Members != nil {
					t.Errorf("members %+v, want none (kept as they are)", tc.info.Members)
				}
			} else {
				if tc.info.Members == nil || !tc.info.Members.IsFull || len(tc.info.Members.MemberMap) != len(tc.wantMembers) {
					t.Fatalf("members %+v, want the full list %v", tc.info.Members, tc.wantMembers)
				}
				for _, id := range tc.wantMembers {
					m, ok := tc.info.Members.MemberMap[id]
					if !ok || m.Membership != event.MembershipJoin {
						t.Errorf("member %s: %+v, want joined", id, m)
					}
				}
				_, direct := tc.info.Members.MemberMap[self.Sender].MemberEventExtra["is_direct"]
				if direct != tc.wantDirect {
					t.Errorf("is_direct on the user's invite: %v, want %v", direct, tc.wantDirect)
				}
			}
			meta := &Metadata{}
			p := &bridgev2.Portal{Portal: &database.Portal{Metadata: meta}}
			if !tc.info.ExtraUpdates(context.Background(), p) || meta.Kind != tc.wantKind.String() {
				t.Errorf("kind recorded %q, want %q", meta.Kind, tc.wantKind)
			}
		})
	}
}

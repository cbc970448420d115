package bridge

import (
	"testing"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"
)

// TestPickCommandLogin: a command sent in a portal applies to the portal's
// login, and only for its owner (or an admin); a second Matrix user in the
// portal, even with an XMPP login of their own, cannot act on it.
func TestPickCommandLogin(t *testing.T) {
	login := func(lid, mxid string) *bridgev2.UserLogin {
		return &bridgev2.UserLogin{UserLogin: &database.UserLogin{ID: networkid.UserLoginID(lid), UserMXID: id.UserID(mxid)}}
	}
	victim := login("victim@xmpp.example", "@victim:hs")
	mallory := login("mallory@xmpp.example", "@mallory:hs")
	for _, tc := range []struct {
		name     string
		user     string
		admin    bool
		inPortal bool
		logins   []*bridgev2.UserLogin
		def      *bridgev2.UserLogin
		want     *bridgev2.UserLogin
	}{
		{"owner in own portal", "@victim:hs", false, true, []*bridgev2.UserLogin{victim}, victim, victim},
		{"second user in the portal", "@mallory:hs", false, true, []*bridgev2.UserLogin{victim}, mallory, nil},
		{"second user without login", "@mallory:hs", false, true, []*bridgev2.UserLogin{victim}, nil, nil},
		{"admin in another user's portal", "@admin:hs", true, true, []*bridgev2.UserLogin{victim}, nil, victim},
		{"shared room: each their own", "@mallory:hs", false, true, []*bridgev2.UserLogin{victim, mallory}, mallory, mallory},
		{"outside portals: default login", "@mallory:hs", false, false, nil, mallory, mallory},
		{"outside portals without login", "@mallory:hs", false, false, nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pickCommandLogin(id.UserID(tc.user), tc.admin, tc.inPortal, tc.logins, tc.def)
			if got != tc.want {
				t.Fatalf("login = %v, want %v (err %v)", got, tc.want, err)
			}
			if tc.want == nil && err == nil {
				t.Fatal("no error for a refused command")
			}
		})
	}
}

package puppet

import (
	"context"
	"testing"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"mellium.im/xmpp/jid"
)

// TestUserInfo: a contact's ghost carries its xmpp: identifier and records
// where its name came from (the roster, or its own nick); a hidden
// occupant's carries the occupant JID and nothing to record.
func TestUserInfo(t *testing.T) {
	bob := jid.MustParse("bob@example.org/phone")
	for _, tc := range []struct {
		name             string
		info             *bridgev2.UserInfo
		wantName, wantID string
		wantMeta         Metadata
		wantUpdate       bool
	}{
		{"roster name", ContactInfo(bob, "Bobby (XMPP)", "Bobby"), "Bobby (XMPP)", "xmpp:bob@example.org", Metadata{RosterName: "Bobby"}, true},
		{"no roster name", ContactInfo(bob, "bob (XMPP)", ""), "bob (XMPP)", "xmpp:bob@example.org", Metadata{}, false},
		{"own nick", NickInfo("Robert (XMPP)", "Robert"), "Robert (XMPP)", "", Metadata{Nick: "Robert"}, true},
		{"hidden occupant", OccupantInfo(jid.MustParse("room@muc.example.org/bob"), "bob (XMPP)"), "bob (XMPP)", "xmpp:room@muc.example.org/bob", Metadata{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.info.Name == nil || *tc.info.Name != tc.wantName {
				t.Errorf("name %v, want %q", tc.info.Name, tc.wantName)
			}
			id := ""
			if len(tc.info.Identifiers) > 0 {
				id = tc.info.Identifiers[0]
			}
			if id != tc.wantID {
				t.Errorf("identifier %q, want %q", id, tc.wantID)
			}
			meta := &Metadata{}
			updated := false
			if tc.info.ExtraUpdates != nil {
				updated = tc.info.ExtraUpdates(context.Background(), &bridgev2.Ghost{Ghost: &database.Ghost{Metadata: meta}})
			}
			if *meta != tc.wantMeta || updated != tc.wantUpdate {
				t.Errorf("metadata %+v (updated %v), want %+v (%v)", *meta, updated, tc.wantMeta, tc.wantUpdate)
			}
		})
	}
}

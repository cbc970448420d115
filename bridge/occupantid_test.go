package bridge

import (
	"context"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/puppet"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucadmin"
	"github.com/mxomemo/xmpp-bridge/xmpp/occupantid"
	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// TestOccupantIDGuardsCorrections: in a room that hides real JIDs and
// stamps XEP-0421 occupant ids, a later occupant with the same nick (same
// ghost) cannot correct or retract the earlier occupant's message; the
// element counts only when the room announces the feature.
func TestOccupantIDGuardsCorrections(t *testing.T) {
	f := newInboxFixture(t)
	ctx := context.Background()
	room := jid.MustParse("anon@muc.localhost")
	stanza := func(occ string) *stanzabuf.Stanza {
		x := `<message xmlns='jabber:client' from='anon@muc.localhost/alex' type='groupchat'><body>x</body>`
		if occ != "" {
			x += `<occupant-id xmlns='urn:xmpp:occupant-id:0' id='` + occ + `'/>`
		}
		st, err := stanzabuf.Read(xml.NewDecoder(strings.NewReader(x + `</message>`)))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	withFeature := xmppclient.Room{JID: room, Features: mucadmin.RoomInfo{Anonymity: mucadmin.SemiAnonymous, Features: []string{occupantid.NS}}}
	without := xmppclient.Room{JID: room, Features: mucadmin.RoomInfo{Anonymity: mucadmin.SemiAnonymous}}
	if got := xmppclient.RoomOccupantID(withFeature, stanza("first-alex")); got != "first-alex" {
		t.Errorf("occupant id in a room with the feature: %q", got)
	}
	if got := xmppclient.RoomOccupantID(without, stanza("forged")); got != "" {
		t.Errorf("occupant id taken from a room without the feature: %q", got)
	}

	ghost := puppet.OccupantUserID(jid.MustParse("anon@muc.localhost/alex"))
	key := f.c.mucKey(room)
	if err := f.c.main.Bridge.DB.Portal.Insert(ctx, &database.Portal{PortalKey: key, MXID: "!anon:localhost", Metadata: &portal.Metadata{}}); err != nil {
		t.Fatal(err)
	}
	if err := f.c.main.Bridge.DB.Ghost.Insert(ctx, &database.Ghost{ID: ghost, Metadata: &puppet.Metadata{}}); err != nil {
		t.Fatal(err)
	}
	insert := func(mid, occ string) networkid.MessageID {
		t.Helper()
		msg := &database.Message{ID: networkid.MessageID(mid), MXID: id.EventID("$" + mid), Room: key, SenderID: ghost,
			Timestamp: time.Now(), Metadata: &portal.MessageMetadata{OriginID: mid, OccupantID: occ}}
		if err := f.c.main.Bridge.DB.Message.Insert(ctx, msg); err != nil {
			t.Fatal(err)
		}
		return msg.ID
	}
	stamped := insert("m1", "first-alex")
	unstamped := insert("m2", "")
	for _, tc := range []struct {
		name   string
		target networkid.MessageID
		occ    string
		want   bool
	}{
		{"same occupant", stamped, "first-alex", true},
		{"later occupant with the nick", stamped, "second-alex", false},
		{"no occupant id on the correction", stamped, "", false},
		{"original without occupant id", unstamped, "second-alex", true},
		{"unknown message", "nope", "first-alex", false},
	} {
		if got := f.c.sameOccupant(ctx, tc.target, tc.occ); got != tc.want {
			t.Errorf("%s: sameOccupant = %v, want %v", tc.name, got, tc.want)
		}
	}
}

package mucadmin_test

import (
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/xmltest"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucadmin"
)

func TestSetAffiliationsIQ(t *testing.T) {
	room := jid.MustParse("coven@chat.shakespeare.lit")
	got, err := xmltest.Encode(mucadmin.SetAffiliationsIQ(room, mucadmin.Member, jid.MustParse("hag66@shakespeare.lit/pda"), jid.MustParse("wiccarocks@shakespeare.lit")))
	want := `<iq type="set" to="coven@chat.shakespeare.lit"><query xmlns="http://jabber.org/protocol/muc#admin">` +
		`<item affiliation="member" jid="hag66@shakespeare.lit"></item><item affiliation="member" jid="wiccarocks@shakespeare.lit"></item></query></iq>`
	if err != nil || got != want {
		t.Errorf("wrong IQ:\nwant=%s\n got=%s (%v)", want, got, err)
	}
}

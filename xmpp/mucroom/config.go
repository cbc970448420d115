package mucroom

import (
	"context"
	"encoding/xml"
	"fmt"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/iqresp"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/iqwait"
)

// Room configuration fields (XEP-0045 §10.2, FORM_TYPE
// http://jabber.org/protocol/muc#roomconfig) the bridge sets on the rooms it
// creates.
const (
	NSRoomConfig      = "http://jabber.org/protocol/muc#roomconfig"
	FieldRoomName     = "muc#roomconfig_roomname"
	FieldDescription  = "muc#roomconfig_roomdesc"
	FieldMembersOnly  = "muc#roomconfig_membersonly"
	FieldWhois        = "muc#roomconfig_whois"
	FieldPersistent   = "muc#roomconfig_persistentroom"
	FieldPublic       = "muc#roomconfig_publicroom"
	FieldAllowInvites = "muc#roomconfig_allowinvites"
)

// ConfigField is one submitted field of the room configuration form.
type ConfigField struct {
	Var   string
	Value string
}

// ConfigureIQ is the owner IQ that submits fields as room's configuration
// (§10.2); fields not given keep the room's defaults.
func ConfigureIQ(room jid.JID, fields []ConfigField) xml.TokenReader {
	field := func(v, value string) xml.TokenReader {
		return xmlstream.Wrap(
			xmlstream.Wrap(xmlstream.Token(xml.CharData(value)), xml.StartElement{Name: xml.Name{Local: "value"}}),
			xml.StartElement{Name: xml.Name{Local: "field"}, Attr: []xml.Attr{{Name: xml.Name{Local: "var"}, Value: v}}},
		)
	}
	inner := []xml.TokenReader{field("FORM_TYPE", NSRoomConfig)}
	for _, f := range fields {
		inner = append(inner, field(f.Var, f.Value))
	}
	x := xmlstream.Wrap(xmlstream.MultiReader(inner...), xml.StartElement{
		Name: xml.Name{Space: "jabber:x:data", Local: "x"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: "submit"}},
	})
	return stanza.IQ{Type: stanza.SetIQ, To: room.Bare()}.Wrap(
		xmlstream.Wrap(x, xml.StartElement{Name: xml.Name{Space: "http://jabber.org/protocol/muc#owner", Local: "query"}}),
	)
}

// Configure submits fields as room's configuration; the room answers with
// an error when it refuses a value (not-acceptable, forbidden).
func Configure(ctx context.Context, s *xmpp.Session, room jid.JID, fields []ConfigField) error {
	ctx, cancel := iqwait.Context(ctx)
	defer cancel()
	resp, err := s.SendIQ(ctx, ConfigureIQ(room, fields))
	if err != nil {
		return fmt.Errorf("failed to configure %s: %w", room, err)
	}
	defer resp.Close()
	if _, err := iqresp.Read(resp, nil); err != nil {
		return fmt.Errorf("failed to configure %s: %w", room, err)
	}
	return nil
}

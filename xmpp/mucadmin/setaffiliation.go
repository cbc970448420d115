package mucadmin

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

// SetAffiliationsIQ grants aff to each of jids (bare) in room in one admin
// query (§9.3 members, §10.3 owners).
func SetAffiliationsIQ(room jid.JID, aff Affiliation, jids ...jid.JID) xml.TokenReader {
	var items []xml.TokenReader
	for _, j := range jids {
		items = append(items, xmlstream.Wrap(nil, xml.StartElement{
			Name: xml.Name{Local: "item"},
			Attr: []xml.Attr{
				{Name: xml.Name{Local: "affiliation"}, Value: string(aff)},
				{Name: xml.Name{Local: "jid"}, Value: j.Bare().String()},
			},
		}))
	}
	return stanza.IQ{Type: stanza.SetIQ, To: room.Bare()}.Wrap(xmlstream.Wrap(
		xmlstream.MultiReader(items...),
		xml.StartElement{Name: xml.Name{Space: NSAdmin, Local: "query"}},
	))
}

// SetAffiliations sends SetAffiliationsIQ on s.
func SetAffiliations(ctx context.Context, s *xmpp.Session, room jid.JID, aff Affiliation, jids ...jid.JID) error {
	if len(jids) == 0 {
		return nil
	}
	ctx, cancel := iqwait.Context(ctx)
	defer cancel()
	resp, err := s.SendIQ(ctx, SetAffiliationsIQ(room, aff, jids...))
	if err != nil {
		return fmt.Errorf("failed to set %s affiliations in %s: %w", aff, room, err)
	}
	defer resp.Close()
	if _, err := iqresp.Read(resp, nil); err != nil {
		return fmt.Errorf("failed to set %s affiliations in %s: %w", aff, room, err)
	}
	return nil
}

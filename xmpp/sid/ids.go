package sid

import (
	"encoding/xml"
	"fmt"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/children"
)

// IDs are the XEP-0359 ids found in one message.
type IDs struct {
	// OriginID is the sender's origin-id, or "" if there was none.
	// It is chosen by the sender: use it only to recognise our own
	// reflected messages, never as a trusted key for someone else's.
	OriginID string

	// StanzaIDs holds every stanza-id in the message, trusted or not.
	StanzaIDs []StanzaID
}

// StanzaIDBy returns the stanza-id stamped by the entity by (compared as a
// full JID; pass the bare JID of the account or room).
// ok is false if there is none, or if there are several different ones
// for by, which a conforming server never produces and so is not trusted.
func (ids IDs) StanzaIDBy(by jid.JID) (id string, ok bool) {
	for _, s := range ids.StanzaIDs {
		if !s.By.Equal(by) {
			continue
		}
		if ok && s.ID != id {
			return "", false
		}
		id, ok = s.ID, true
	}
	return id, ok
}

// Extract reads a stanza (normally a message) from r and returns its
// XEP-0359 ids. Only direct children of the stanza are considered: ids
// inside forwarded messages (carbons, MAM results) belong to the inner
// message and must be extracted from it.
// A malformed origin-id or stanza-id makes Extract fail.
func Extract(r xml.TokenReader) (IDs, error) {
	var ids IDs
	sawOrigin := false
	_, err := children.Each(r, func(d *xml.Decoder, start xml.StartElement) (bool, error) {
		if start.Name.Space != NS {
			return false, nil
		}
		switch start.Name.Local {
		case "origin-id":
			var o OriginID
			if err := d.DecodeElement(&o, &start); err != nil {
				return true, err
			}
			if sawOrigin && o.ID != ids.OriginID {
				return true, fmt.Errorf("sid: conflicting origin-ids %q and %q", ids.OriginID, o.ID)
			}
			sawOrigin, ids.OriginID = true, o.ID
			return true, nil
		case "stanza-id":
			var s StanzaID
			if err := d.DecodeElement(&s, &start); err != nil {
				return true, err
			}
			ids.StanzaIDs = append(ids.StanzaIDs, s)
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return IDs{}, fmt.Errorf("failed to extract stanza ids: %w", err)
	}
	return ids, nil
}

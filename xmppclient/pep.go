package xmppclient

import (
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/xmpp/avatar"
	"github.com/mxomemo/xmpp-bridge/xmpp/bookmarks"
	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
)

// The payloads of the PEP notifications the connector acts on, read here
// so that the connector gets values, not items to parse.

// DeviceListNotification reads an OMEMO device list notification (either
// version) of contact or of own, the account: omemoxmpp.ErrNotDeviceList
// for another node.
func DeviceListNotification(ev pubsub.Event, own jid.JID) (*omemoxmpp.DeviceListUpdate, error) {
	return omemoxmpp.DeviceListFromEvent(ev, own)
}

// AvatarNotification reads a XEP-0084 metadata notification; ok is false
// for another node. meta is nil when the last item has no payload (a
// retraction, a purge, an id-only item): the avatar is then looked up.
func AvatarNotification(ev pubsub.Event) (meta *avatar.Metadata, ok bool, err error) {
	if ev.Node != avatar.NSMetadata {
		return nil, false, nil
	}
	if len(ev.Items) == 0 || !ev.Items[len(ev.Items)-1].HasPayload() {
		return nil, true, nil
	}
	m, err := avatar.ParseMetadata(ev.Items[len(ev.Items)-1])
	if err != nil {
		return nil, true, err
	}
	return &m, true, nil
}

// BookmarksNotification reads a XEP-0402 notification; ok is false for
// another node. Unreadable items are skipped and counted in err, returned
// next to the rest (bookmarks.ParseItems).
func BookmarksNotification(ev pubsub.Event) (marks []bookmarks.Conference, ok bool, err error) {
	if ev.Node != bookmarks.NS {
		return nil, false, nil
	}
	marks, err = bookmarks.ParseItems(ev.Items)
	return marks, true, err
}

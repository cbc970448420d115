package bridge

import (
	"maunium.net/go/mautrix/bridgev2/networkid"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/portal"
)

// MakeMessageID is portal.MakeMessageID, kept for the files still being
// reworked elsewhere (handleomemo.go, media.go) so their diffs stay theirs.
func MakeMessageID(chat, sender jid.JID, xmppID string) networkid.MessageID {
	return portal.MakeMessageID(chat, sender, xmppID)
}

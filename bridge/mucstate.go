package bridge

import (
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/puppet"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// Group chats (XEP-0045 MUC). Each login takes part in rooms as itself, and
// each room it joined is a portal of that login alone (portal.MUCKey with
// split set): two logins in one room are two occupants with two views of
// it, like two accounts in a 1:1 chat with the same contact.
//
// The live state of the rooms is xmppclient.Rooms; which rooms to be in
// survives restarts in the login metadata (UserLoginMetadata.Rooms). Here:
// who an occupant is on the Matrix side.

// roomGhost is the Matrix-side identity of occupant o: the shared ghost of
// its real JID when the room shows it, else a ghost for the occupant JID.
// Ourselves (the account, from any client) is fromMe.
func roomGhost(r xmppclient.Room, o xmppclient.Occupant, account jid.JID) (id networkid.UserID, fromMe bool) {
	if o.Nick == r.Nick {
		return puppet.UserID(account), true
	}
	if !o.RealJID.Equal(jid.JID{}) {
		if o.RealJID.Bare().Equal(account.Bare()) {
			return puppet.UserID(account), true
		}
		return puppet.UserID(o.RealJID), false
	}
	occ, err := r.JID.WithResource(o.Nick)
	if err != nil {
		// Nicks come from parsed JIDs, so this cannot happen.
		return "", false
	}
	return puppet.OccupantUserID(occ), false
}

// roomSender is who sent something as nick, as bridgev2 sees it.
func roomSender(r xmppclient.Room, nick string, account jid.JID, login networkid.UserLoginID) bridgev2.EventSender {
	o, ok := r.Occupants[nick]
	if !ok {
		o = xmppclient.Occupant{Nick: nick}
	}
	id, fromMe := roomGhost(r, o, account)
	if fromMe {
		return bridgev2.EventSender{IsFromMe: true, SenderLogin: login, Sender: id}
	}
	return bridgev2.EventSender{Sender: id}
}

// roomHasGhost reports whether an occupant other than except is the ghost id
// (someone in the room from two clients with two nicks).
func roomHasGhost(r xmppclient.Room, id networkid.UserID, except string, account jid.JID) bool {
	for nick, o := range r.Occupants {
		if nick == except {
			continue
		}
		if g, _ := roomGhost(r, o, account); g == id {
			return true
		}
	}
	return false
}

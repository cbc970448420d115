package bridge

import (
	"context"

	"go.mau.fi/util/ptr"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/event"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/puppet"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// mucChatInfo is the portal info of a room: its name (disco#info, else its
// localpart), its subject as the topic, and while we are in it the full
// member list from the occupants' presences.
func (c *Client) mucChatInfo(room xmppclient.Room) *bridgev2.ChatInfo {
	name := mucroom.Name(room.Info, room.JID)
	info := &bridgev2.ChatInfo{
		Name:  &name,
		Topic: room.Subject,
		Type:  ptr.Ptr(database.RoomTypeDefault),
		ExtraUpdates: func(ctx context.Context, p *bridgev2.Portal) bool {
			meta, ok := p.Metadata.(*portal.Metadata)
			if !ok || meta.Kind == portal.MUC.String() {
				return false
			}
			meta.Kind = portal.MUC.String()
			return true
		},
	}
	if room.Joined {
		info.Members = c.mucMembers(room)
	}
	return info
}

// mucMembers is the member list of a room we are in: us and every
// occupant, one ghost per real JID where the room shows real JIDs.
func (c *Client) mucMembers(room xmppclient.Room) *bridgev2.ChatMemberList {
	me := puppet.UserID(c.account)
	members := &bridgev2.ChatMemberList{
		IsFull: true,
		MemberMap: bridgev2.ChatMemberMap{
			me: {EventSender: bridgev2.EventSender{IsFromMe: true, SenderLogin: c.login.ID, Sender: me}, Membership: event.MembershipJoin},
		},
		TotalMemberCount: len(room.Occupants) + 1,
	}
	for _, o := range room.Occupants {
		if m, ok := c.occupantMember(room, o, event.MembershipJoin); ok {
			members.MemberMap.Add(m)
		}
	}
	return members
}

// occupantMember is occupant o as a portal member; ok is false for
// ourselves from another client.
func (c *Client) occupantMember(room xmppclient.Room, o xmppclient.Occupant, membership event.Membership) (bridgev2.ChatMember, bool) {
	id, fromMe := roomGhost(room, o, c.account)
	if fromMe || id == "" {
		return bridgev2.ChatMember{}, false
	}
	m := bridgev2.ChatMember{EventSender: bridgev2.EventSender{Sender: id}, Membership: membership}
	if membership == event.MembershipJoin {
		if o.RealJID.Equal(jid.JID{}) {
			m.UserInfo = c.occupantInfo(room.JID, o.Nick)
		} else {
			m.UserInfo = c.sharedGhostInfo(o.RealJID)
		}
	}
	return m, true
}

// occupantInfo is the ghost info of an occupant whose real JID is hidden:
// the nick is all we know.
func (c *Client) occupantInfo(room jid.JID, nick string) *bridgev2.UserInfo {
	occ, err := room.WithResource(nick)
	if err != nil {
		return nil
	}
	name := c.main.Config.FormatDisplayname(nick, occ.String())
	return &bridgev2.UserInfo{
		Identifiers: []string{"xmpp:" + occ.String()},
		Name:        &name,
		IsBot:       ptr.Ptr(false),
	}
}

// mucChatInfoFor is GetChatInfo for a room portal: what the session knows,
// or just the name while we are not in the room.
func (c *Client) mucChatInfoFor(room jid.JID) *bridgev2.ChatInfo {
	if r, ok := c.mucs.Get(room); ok {
		return c.mucChatInfo(r)
	}
	return c.mucChatInfo(xmppclient.Room{JID: room.Bare()})
}

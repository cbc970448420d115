package bridge

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/random"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/event"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/puppet"
	xconn "github.com/mxomemo/xmpp-bridge/xmpp/conn"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// GetChatInfo implements bridgev2.NetworkAPI.
func (c *Client) GetChatInfo(ctx context.Context, p *bridgev2.Portal) (*bridgev2.ChatInfo, error) {
	chat, err := portal.Parse(p.PortalKey)
	if err != nil {
		return nil, err
	}
	if chat.Kind == portal.MUC {
		return c.mucChatInfoFor(chat.JID), nil
	}
	if chat.Kind == portal.PM {
		return c.pmChatInfo(chat.JID), nil
	}
	return c.dmChatInfo(chat.JID), nil
}

// dmChatInfo is the portal info of the 1:1 chat with contact
// (portal.DMInfo).
func (c *Client) dmChatInfo(contact jid.JID) *bridgev2.ChatInfo {
	return portal.DMInfo(c.selfSender(), bridgev2.ChatMember{
		EventSender: bridgev2.EventSender{Sender: puppet.UserID(contact)},
		UserInfo:    c.sharedGhostInfo(contact),
	})
}

// selfSender is the user as a chat member.
func (c *Client) selfSender() bridgev2.EventSender {
	return bridgev2.EventSender{IsFromMe: true, SenderLogin: c.login.ID, Sender: puppet.UserID(c.account)}
}

// sharedGhostInfo is userInfo for places that update the ghost as a side effect (portal members,
// identifier lookups): ghosts are shared by all logins, so a login whose roster does not name the
// contact leaves the name alone (GetUserInfo fills it in when the ghost has none yet).
func (c *Client) sharedGhostInfo(contact jid.JID) *bridgev2.UserInfo {
	info := c.userInfo(contact)
	if _, ok := c.roster.Get(contact); !ok {
		info.Name = nil
	}
	return info
}

// userInfo is the ghost info of contact as this login's roster names it
// (puppet.ContactInfo).
func (c *Client) userInfo(contact jid.JID) *bridgev2.UserInfo {
	item, _ := c.roster.Get(contact)
	name := c.main.Config.FormatDisplayname(puppet.Name(item.Name, contact), contact.Bare().String())
	return puppet.ContactInfo(contact, name, item.Name)
}

// GetUserInfo implements bridgev2.NetworkAPI.
func (c *Client) GetUserInfo(ctx context.Context, ghost *bridgev2.Ghost) (*bridgev2.UserInfo, error) {
	if occ, err := puppet.ParseOccupantID(ghost.ID); err == nil {
		return c.occupantInfo(occ.Bare(), occ.Resourcepart()), nil
	}
	contact, err := puppet.ParseUserID(ghost.ID)
	if err != nil {
		return nil, err
	}
	info := c.userInfo(contact)
	c.initialAvatar(ctx, ghost, contact)
	if _, ok := c.roster.Get(contact); !ok {
		// Not in this login's roster (yet): keep a name another login's
		// roster gave rather than falling back to the localpart.
		meta, _ := ghost.Metadata.(*puppet.Metadata)
		switch {
		case meta != nil && meta.RosterName != "":
			name := c.main.Config.FormatDisplayname(meta.RosterName, contact.String())
			info.Name = &name
		case meta != nil && meta.Nick != "":
			// The name the contact gives itself (contactname.go).
			info.Name = c.nickInfo(contact, meta.Nick).Name
		default:
			c.startNickLookup(ctx, contact)
		}
	}
	return info, nil
}

// ResolveIdentifier implements bridgev2.IdentifierResolvingNetworkAPI: the
// identifier is a JID, optionally as an xmpp: URI.
func (c *Client) ResolveIdentifier(ctx context.Context, identifier string, createChat bool) (*bridgev2.ResolveIdentifierResponse, error) {
	identifier = strings.TrimSpace(identifier)
	identifier = strings.TrimPrefix(identifier, "xmpp:")
	if i := strings.IndexByte(identifier, '?'); i >= 0 {
		identifier = identifier[:i]
	}
	contact, err := xconn.ParseJID(identifier)
	if err != nil {
		return nil, bridgev2.RespError{ErrCode: "M_INVALID_PARAM", Err: fmt.Sprintf("%q is not an XMPP address (user@example.org)", identifier), StatusCode: 400}
	}
	return c.resolve(ctx, contact, createChat)
}

func (c *Client) resolve(ctx context.Context, contact jid.JID, createChat bool) (*bridgev2.ResolveIdentifierResponse, error) {
	userID := puppet.UserID(contact)
	ghost, err := c.main.Bridge.GetGhostByID(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("failed to get ghost for %s: %w", contact, err)
	}
	info := c.sharedGhostInfo(contact)
	if c.rosterless(contact, ghost) {
		// Not in any roster: the contact's own name (XEP-0172 / vCard), else its localpart,
		// rather than no name at all.
		n := ""
		if meta, ok := ghost.Metadata.(*puppet.Metadata); ok {
			n = meta.Nick
		}
		if n == "" {
			n = c.lookupNick(ctx, contact)
		}
		named := c.nickInfo(contact, n)
		info.Name, info.ExtraUpdates = named.Name, named.ExtraUpdates
	}
	c.initialAvatar(ctx, ghost, contact)
	resp := &bridgev2.ResolveIdentifierResponse{
		Ghost:    ghost,
		UserID:   userID,
		UserInfo: info,
	}
	if createChat {
		resp.Chat = &bridgev2.CreateChatResponse{
			PortalKey:  portal.DMKey(contact, c.login.ID),
			PortalInfo: c.dmChatInfo(contact),
		}
	}
	return resp, nil
}

// GetContactList implements bridgev2.ContactListingNetworkAPI from the roster.
func (c *Client) GetContactList(ctx context.Context) ([]*bridgev2.ResolveIdentifierResponse, error) {
	items := c.roster.List()
	out := make([]*bridgev2.ResolveIdentifierResponse, 0, len(items))
	for _, item := range items {
		if item.JID.Localpart() == "" {
			continue // servers and components are not people to chat with
		}
		resp, err := c.resolve(ctx, item.JID, false)
		if err != nil {
			return nil, err
		}
		out = append(out, resp)
	}
	return out, nil
}

// mucChatInfo is the portal info of a room: its name (disco#info, else its
// localpart), its subject as the topic, and while we are in it the full
// member list from the occupants' presences.
func (c *Client) mucChatInfo(room xmppclient.Room) *bridgev2.ChatInfo {
	var members *bridgev2.ChatMemberList
	if room.Joined {
		members = c.mucMembers(room)
	}
	return portal.RoomInfo(mucroom.Name(room.Info, room.JID), room.Subject, members)
}

// mucMembers is the member list of a room we are in: us and every
// occupant, one ghost per real JID where the room shows real JIDs.
func (c *Client) mucMembers(room xmppclient.Room) *bridgev2.ChatMemberList {
	others := make([]bridgev2.ChatMember, 0, len(room.Occupants))
	for _, o := range room.Occupants {
		if m, ok := c.occupantMember(room, o, event.MembershipJoin); ok {
			others = append(others, m)
		}
	}
	return portal.RoomMembers(c.selfSender(), others, len(room.Occupants)+1)
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

// occupantInfo is the ghost info of an occupant whose real JID is hidden
// (puppet.OccupantInfo): the nick is all we know.
func (c *Client) occupantInfo(room jid.JID, nick string) *bridgev2.UserInfo {
	occ, err := room.WithResource(nick)
	if err != nil {
		return nil
	}
	return puppet.OccupantInfo(occ, c.main.Config.FormatDisplayname(nick, occ.String()))
}

// mucChatInfoFor is GetChatInfo for a room portal: what the session knows,
// or just the name while we are not in the room.
func (c *Client) mucChatInfoFor(room jid.JID) *bridgev2.ChatInfo {
	if r, ok := c.mucs.Get(room); ok {
		return c.mucChatInfo(r)
	}
	return c.mucChatInfo(xmppclient.Room{JID: room.Bare()})
}

// handleMUCPresence applies a presence from one of the login's rooms and
// tells bridgev2 what changed. It runs in the incoming queue, in order with
// the room's messages.
func (c *Client) handleMUCPresence(ctx context.Context, in xmppclient.Inbound) {
	log := zerolog.Ctx(ctx)
	p, err := in.Presence, in.Err
	if err != nil {
		log.Warn().Err(err).Msg("Dropping malformed group chat presence")
		return
	}
	room, out, ok := c.mucs.ApplyPresence(p)
	if !ok {
		return
	}
	c.roomReconfigured(ctx, out.Config)
	switch out.Change {
	case xmppclient.ChangeSelfJoined:
		// The portal is synced when the subject arrives, or after a while
		// from a room that sends none.
		time.AfterFunc(mucSubjectWait, func() {
			if room, ok := c.mucs.TakeSync(room.JID); ok {
				c.queueRoomResync(room)
			}
		})
	case xmppclient.ChangeSelfLeft:
		log.Info().Stringer("room", room.JID).Ints("status", out.Status).Msg("We are no longer in the group chat")
		if text := leftRoomText(out.Status); text != "" {
			c.queueRoomNotice(room.JID, text)
		}
	case xmppclient.ChangeJoinFailed:
		log.Debug().Stringer("room", room.JID).Msg("Group chat refused the join")
	case xmppclient.ChangeOccupantJoined:
		c.queueMemberChange(room, out.Occupant, event.MembershipJoin)
	case xmppclient.ChangeOccupantLeft:
		renamed := slices.Contains(out.Status, mucroom.StatusNickChanged) && !out.Occupant.RealJID.Equal(jid.JID{})
		if id, _ := roomGhost(room, out.Occupant, c.account); !renamed && !roomHasGhost(room, id, "", c.account) {
			// A nick change keeps a real-JID ghost; an occupant ghost is
			// the old nick's and leaves, the new nick's joins.
			c.queueMemberChange(room, out.Occupant, event.MembershipLeave)
		}
	}
}

// leftRoomText says why the room put us out (§7.2.8 status codes); ""
// when we left ourselves.
func leftRoomText(status []int) string {
	has := func(code int) bool { return slices.Contains(status, code) }
	switch {
	case has(mucroom.StatusBanned):
		return "You were banned from this group chat."
	case has(mucroom.StatusKicked):
		return "You were kicked from this group chat. The bridge rejoins it when it reconnects; `leave` forgets it."
	case has(mucroom.StatusRemoved):
		return "You were removed from this members-only group chat."
	case has(mucroom.StatusShutdown):
		return "The group chat service is shutting down; the bridge rejoins the room when it reconnects."
	}
	return ""
}

// mucKey is the portal of room for this login.
func (c *Client) mucKey(room jid.JID) networkid.PortalKey {
	return portal.MUCKey(room, c.login.ID, true)
}

// queueRoomResync creates the portal of a room we just joined, or brings
// an existing one up to date with the full member list.
func (c *Client) queueRoomResync(room xmppclient.Room) {
	c.login.QueueRemoteEvent(&simplevent.ChatResync{
		EventMeta: simplevent.EventMeta{
			Type:         bridgev2.RemoteEventChatResync,
			PortalKey:    c.mucKey(room.JID),
			CreatePortal: true,
		},
		ChatInfo: c.mucChatInfo(room),
	})
}

// queueMemberChange bridges an occupant entering or leaving after our join.
func (c *Client) queueMemberChange(room xmppclient.Room, o xmppclient.Occupant, membership event.Membership) {
	member, ok := c.occupantMember(room, o, membership)
	if !ok {
		return
	}
	c.login.QueueRemoteEvent(&simplevent.ChatInfoChange{
		EventMeta: simplevent.EventMeta{
			Type:      bridgev2.RemoteEventChatInfoChange,
			PortalKey: c.mucKey(room.JID),
			Sender:    member.EventSender,
			Timestamp: time.Now(),
		},
		ChatInfoChange: portal.MemberChange(member),
	})
}

// queueRoomNotice posts a notice from the bridge bot into the room's
// portal, if there is one.
func (c *Client) queueRoomNotice(room jid.JID, text string) {
	c.login.QueueRemoteEvent(&simplevent.Message[string]{
		EventMeta: simplevent.EventMeta{
			Type:      bridgev2.RemoteEventMessage,
			PortalKey: c.mucKey(room),
			Timestamp: time.Now(),
		},
		Data: text,
		ID:   portal.MakeMessageID(room, jid.JID{}, "notice:"+random.String(16)),
		ConvertMessageFunc: func(ctx context.Context, p *bridgev2.Portal, intent bridgev2.MatrixAPI, text string) (*bridgev2.ConvertedMessage, error) {
			return &bridgev2.ConvertedMessage{Parts: []*bridgev2.ConvertedMessagePart{{
				Type:    event.EventMessage,
				Content: &event.MessageEventContent{MsgType: event.MsgNotice, Body: text},
			}}}, nil
		},
	})
}

// Group chats (XEP-0045 MUC). Each login takes part in rooms as itself, and
// each room it joined is a portal of that login alone (portal.MUCKey with
// split set): two logins in one room are two occupants with two views of
// it, like two accounts in a 1:1 chat with the same contact.
//
// The live state of the rooms is xmppclient.Rooms; which rooms to be in
// survives restarts in the login metadata (UserLoginMetadata.Rooms). Here:
// who an occupant is on the Matrix side.

// roomGhost is the Matrix-side identity of occupant o
// (puppet.OccupantGhost); ourselves (the account, from any client) is
// fromMe.
func roomGhost(r xmppclient.Room, o xmppclient.Occupant, account jid.JID) (id networkid.UserID, fromMe bool) {
	return puppet.OccupantGhost(r.JID, r.Nick, o.Nick, o.RealJID, account)
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

package bridge

import (
	"context"
	"fmt"
	"strings"

	"go.mau.fi/util/ptr"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/event"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/puppet"
	xconn "github.com/mxomemo/xmpp-bridge/xmpp/conn"
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

func (c *Client) dmChatInfo(contact jid.JID) *bridgev2.ChatInfo {
	me := puppet.UserID(c.account)
	other := puppet.UserID(contact)
	members := &bridgev2.ChatMemberList{
		IsFull:      true,
		OtherUserID: other,
		MemberMap: bridgev2.ChatMemberMap{
			// is_direct on the user's invite: clients list the portal as a direct chat
			// (and add it to m.direct when the user accepts; with double puppeting
			// bridgev2 writes m.direct itself).
			me: {EventSender: bridgev2.EventSender{IsFromMe: true, SenderLogin: c.login.ID, Sender: me}, Membership: event.MembershipJoin,
				MemberEventExtra: map[string]any{"is_direct": true}},
		},
	}
	if other != me {
		members.MemberMap[other] = bridgev2.ChatMember{
			EventSender: bridgev2.EventSender{Sender: other},
			Membership:  event.MembershipJoin,
			UserInfo:    c.sharedGhostInfo(contact),
		}
	}
	return &bridgev2.ChatInfo{
		Members: members,
		Type:    ptr.Ptr(database.RoomTypeDM),
		// History comes from the account's archive (backfill.go).
		CanBackfill: true,
		ExtraUpdates: func(ctx context.Context, p *bridgev2.Portal) bool {
			meta, ok := p.Metadata.(*portal.Metadata)
			if !ok || meta.Kind == portal.DM.String() {
				return false
			}
			meta.Kind = portal.DM.String()
			return true
		},
	}
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

// userInfo is the ghost info of contact as this login's roster names it.
func (c *Client) userInfo(contact jid.JID) *bridgev2.UserInfo {
	item, _ := c.roster.Get(contact)
	bare := contact.Bare().String()
	name := c.main.Config.FormatDisplayname(puppet.Name(item.Name, contact), bare)
	rosterName := item.Name
	return &bridgev2.UserInfo{
		Identifiers: []string{"xmpp:" + bare},
		Name:        &name,
		IsBot:       ptr.Ptr(false),
		ExtraUpdates: func(ctx context.Context, g *bridgev2.Ghost) bool {
			meta, ok := g.Metadata.(*puppet.Metadata)
			if !ok || rosterName == "" || meta.RosterName == rosterName {
				return false
			}
			meta.RosterName = rosterName
			return true
		},
	}
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

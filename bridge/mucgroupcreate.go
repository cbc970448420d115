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
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/puppet"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// Creating group chats from Matrix: bridgev2's create-group command (in a
// Matrix room whose members are contacts' ghosts) and the provisioning
// API's create_group call end here. The room is made on the account's own
// MUC service, members-only and non-anonymous, so that OMEMO can be used
// in it; the chosen contacts become members and get a mediated invitation.

var _ bridgev2.GroupCreatingNetworkAPI = (*Client)(nil)

// groupTypeRoom is the one group type the bridge creates.
const groupTypeRoom = "room"

// groupCreation is the create_group capability.
func groupCreation() map[string]bridgev2.GroupTypeCapabilities {
	return map[string]bridgev2.GroupTypeCapabilities{
		groupTypeRoom: {
			TypeDescription: "XMPP group chat: members-only, real JIDs shown to members (OMEMO-capable)",
			Name:            bridgev2.GroupFieldCapability{Allowed: true, MaxLength: 100},
			Topic:           bridgev2.GroupFieldCapability{Allowed: true},
			Participants:    bridgev2.GroupFieldCapability{Allowed: true},
		},
	}
}

// roomLocalpart makes a room address from the group's name: a readable
// slug and a random tail, so that two groups of one name do not meet.
func roomLocalpart(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
		if b.Len() >= 24 {
			break
		}
	}
	slug := strings.Trim(b.String(), "-")
	if slug == "" {
		slug = "group"
	}
	return slug + "-" + strings.ToLower(random.String(8))
}

// CreateGroup implements bridgev2.GroupCreatingNetworkAPI.
func (c *Client) CreateGroup(ctx context.Context, params *bridgev2.GroupCreateParams) (*bridgev2.CreateChatResponse, error) {
	log := zerolog.Ctx(ctx)
	s := c.currentSession()
	if s == nil {
		return nil, xmppclient.ErrNotConnected
	}
	var name, topic string
	if params.Name != nil {
		name = strings.TrimSpace(params.Name.Name)
	}
	if params.Topic != nil {
		topic = strings.TrimSpace(params.Topic.Topic)
	}
	failed := map[networkid.UserID]*bridgev2.CreateChatFailedParticipant{}
	var members []jid.JID
	for _, p := range params.Participants {
		j, err := puppet.ParseUserID(p)
		if err != nil {
			failed[p] = &bridgev2.CreateChatFailedParticipant{Reason: "not an XMPP contact (room occupants cannot be added)"}
			continue
		}
		if !j.Bare().Equal(c.account.Bare()) && !slices.ContainsFunc(members, j.Equal) {
			members = append(members, j.Bare())
		}
	}
	service, err := xmppclient.FindMUCService(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("failed to find the group chat service of %s: %w", c.account.Domain(), err)
	}
	room, err := jid.New(roomLocalpart(name), service.Domainpart(), "")
	if err != nil {
		return nil, fmt.Errorf("failed to make a room address: %w", err)
	}
	if name == "" {
		name = room.Localpart()
	}
	config := []mucroom.ConfigField{
		{Var: mucroom.FieldRoomName, Value: name},
		{Var: mucroom.FieldMembersOnly, Value: "1"},
		{Var: mucroom.FieldWhois, Value: "anyone"},
		{Var: mucroom.FieldPersistent, Value: "1"},
		{Var: mucroom.FieldPublic, Value: "0"},
	}
	if topic != "" {
		config = append(config, mucroom.ConfigField{Var: mucroom.FieldDescription, Value: topic})
	}
	key := c.mucKey(room)
	var bound *bridgev2.Portal
	if params.RoomID != "" {
		// create-group in an existing Matrix room bridges that room. It is
		// bound before the join: the room's answer to it syncs the portal
		// (handlemuc.go), which would otherwise make a Matrix room of its own.
		p, err := c.main.Bridge.GetPortalByKey(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("failed to get the portal of %s: %w", room, err)
		}
		err = p.UpdateMatrixRoomID(ctx, params.RoomID, bridgev2.UpdateMatrixRoomIDParams{FailIfMXIDSet: true, ChatInfoSource: c.login})
		if err != nil {
			return nil, fmt.Errorf("failed to bridge the Matrix room to %s: %w", room, err)
		}
		bound = p
	}
	nick := c.defaultNick()
	release, err := c.roomJoins.claim(ctx, room.Bare().String())
	if err != nil {
		return nil, err
	}
	done := c.startRoomCatchUp(room)
	_, err = c.mucs.Create(ctx, s, room, nick, config)
	release()
	if err != nil {
		done(nil, false, time.Time{})
		if bound != nil {
			if rerr := bound.RemoveMXID(ctx); rerr != nil {
				log.Err(rerr).Msg("Failed to unbind the Matrix room from the room that was not created")
			}
		}
		return nil, fmt.Errorf("failed to create %s: %w", room, err)
	}
	r, _ := c.mucs.Get(room)
	done(s, slices.Contains(r.Features.Features, xmppclient.NSMAM), r.JoinStarted)
	log.Info().Stringer("room", room).Int("members", len(members)).Msg("Created group chat")
	if err := c.rememberRoom(ctx, room, nick); err != nil {
		log.Err(err).Stringer("room", room).Msg("Failed to remember the created room")
	}
	if err := c.setBookmark(ctx, room, nick, true); err != nil {
		log.Warn().Err(err).Stringer("room", room).Msg("Failed to bookmark the created room")
	}
	if err := xmppclient.SetRoomMembers(ctx, s, room, members...); err != nil {
		// Without membership the invitations below cannot be used.
		for _, m := range members {
			failed[puppet.UserID(m)] = &bridgev2.CreateChatFailedParticipant{Reason: fmt.Sprintf("could not be made a member: %v", err)}
		}
		members = nil
	}
	for _, m := range members {
		if err := xmppclient.SendInvite(ctx, s, room, m, inviteIDPrefix+random.String(12), name); err != nil {
			failed[puppet.UserID(m)] = &bridgev2.CreateChatFailedParticipant{Reason: fmt.Sprintf("member, but the invitation was not sent: %v", err)}
		}
	}
	if topic != "" {
		if err := xmppclient.SetSubject(ctx, s, room, topic); err != nil {
			log.Warn().Err(err).Msg("Failed to set the new room's subject")
		}
	}
	r, _ = c.mucs.Get(room)
	resp := &bridgev2.CreateChatResponse{PortalKey: key, PortalInfo: c.mucChatInfo(r), Portal: bound}
	if len(failed) > 0 {
		resp.FailedParticipants = failed
	}
	return resp, nil
}

package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/ptr"
	"go.mau.fi/util/random"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/event"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/puppet"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucinvite"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// Invitations to group chats, both ways. An XMPP invitation (XEP-0249
// direct, XEP-0045 mediated) becomes the room's portal with the Matrix user
// invited: accepting the Matrix invite joins the room, rejecting it (when
// bridgev2 passes leaves on, bridge_matrix_leave) declines a mediated
// invitation. A Matrix user inviting a contact's ghost into a room portal
// sends a mediated invitation through the room.

var _ bridgev2.MembershipHandlingNetworkAPI = (*Client)(nil)

// inviteAllowed reports whether an invitation may become a Matrix invite:
// from a roster contact or the account itself. Anyone can send a direct
// invitation; strangers' would be Matrix invite spam. A mediated invitation
// from an inviter the room hides (its occupant JID, as Prosody gives it in
// rooms that do not show real JIDs) cannot be told apart and is let
// through: the room vouches that one of its occupants sent it.
func (c *Client) inviteAllowed(inv mucinvite.Invite) bool {
	if inv.From.Bare().Equal(c.account.Bare()) {
		return true
	}
	if inv.Kind == mucinvite.Mediated && inv.From.Bare().Equal(inv.Room) && inv.From.Resourcepart() != "" {
		return true
	}
	_, ok := c.roster.Get(inv.From.Bare())
	return ok
}

// handleInvite handles an invitation or decline and reports whether st was
// one.
func (c *Client) handleInvite(ctx context.Context, inb xmppclient.Inbound) bool {
	log := zerolog.Ctx(ctx)
	if refusal, ok := xmppclient.ParseRefusal(inb.Stanza, inviteIDPrefix); ok {
		// ejabberd's rooms refuse invitations from occupants unless
		// configured to allow them.
		if !refusal.Room.Equal(jid.JID{}) {
			c.queueRoomNotice(refusal.Room, "The group chat refused the invitation ("+refusal.Reason+").")
		}
		return true
	}
	inv, err := xmppclient.ParseInvite(inb.Stanza)
	switch {
	case errors.Is(err, mucinvite.ErrNoInvite):
		return false
	case err != nil:
		log.Warn().Err(err).Msg("Dropping malformed group chat invitation")
		return true
	}
	l := log.With().Stringer("room", inv.Room).Stringer("from", inv.From).Logger()
	log = &l
	if inv.Kind == mucinvite.Declined {
		text := fmt.Sprintf("%s declined your invitation.", inviterName(inv))
		if inv.Reason != "" {
			text = fmt.Sprintf("%s declined your invitation: %s", inviterName(inv), inv.Reason)
		}
		c.queueRoomNotice(inv.Room, text)
		return true
	}
	if !c.inviteAllowed(inv) {
		log.Info().Msg("Ignoring group chat invitation from someone not in the roster")
		return true
	}
	if r, ok := c.mucs.Get(inv.Room); ok && r.Joined {
		log.Debug().Msg("Invited to a group chat we are in")
		return true
	}
	for _, r := range c.savedRooms() {
		if r.JID == inv.Room.String() {
			// Kept for rejoins already: the rejoin answers for it.
			log.Debug().Msg("Invited to a group chat the login is to be in")
			return true
		}
	}
	log.Info().Stringer("kind", inv.Kind).Msg("Invited to a group chat")
	if err := c.putInvite(ctx, inv, time.Now()); err != nil {
		// Still offered: only an answer after a restart loses the
		// password and the decline.
		log.Err(err).Msg("Failed to keep the invitation for after a restart")
	}
	// Looking up a portal kept from before and the user's membership in
	// it (bridgev2's database and state store) and inviting the user back
	// are Matrix calls: not in the incoming loop.
	go c.offerInvite(inv)
	return true
}

// offerInvite shows an invitation on Matrix: a new portal with the user
// invited; in a portal kept from before, a notice, and the user invited
// back if they left it (a Matrix invite could not be accepted while in it:
// the notice then says how to join).
func (c *Client) offerInvite(inv mucinvite.Invite) {
	ctx, cancel := context.WithTimeout(c.backgroundCtx(), xmppclient.IQTimeout)
	defer cancel()
	p, err := c.main.Bridge.GetExistingPortalByKey(ctx, c.mucKey(inv.Room))
	if err != nil || p == nil || p.MXID == "" {
		c.queueInvitePortal(inv)
		return
	}
	reason := ""
	if inv.Reason != "" {
		reason = " (" + inv.Reason + ")"
	}
	member, err := c.main.Bridge.Matrix.GetMemberInfo(ctx, p.MXID, c.login.UserMXID)
	if err == nil && member != nil && member.Membership == event.MembershipJoin {
		c.queueRoomNotice(inv.Room, fmt.Sprintf("%s invited you to this group chat again%s. Send `%s join %s` here to enter it.",
			inviterName(inv), reason, c.main.Bridge.Config.CommandPrefix, inv.Room))
		return
	}
	// The user left the kept portal: invite them back into it, then say
	// who invited them; accepting joins (HandleMatrixMembership). The
	// invite is sent as it is: the state store (which bridgev2's
	// EnsureInvited trusts) may not have the user's leave yet and still
	// count an earlier invite. Sent before the notice is queued: queueing it
	// has bridgev2 ensure the invite too, which then finds this one.
	invite := &event.Content{Parsed: &event.MemberEventContent{Membership: event.MembershipInvite}}
	if _, err := c.main.Bridge.Bot.SendState(ctx, p.MXID, event.StateMember, c.login.UserMXID.String(), invite, time.Time{}); err != nil {
		zerolog.Ctx(ctx).Err(err).Stringer("room", inv.Room).Msg("Failed to invite the user back into the portal of an invitation")
	}
	c.queueRoomNotice(inv.Room, fmt.Sprintf("%s invited you to this group chat%s.", inviterName(inv), reason))
}

// queueInvitePortal creates the room's portal with the user invited and the
// inviter's ghost in it.
func (c *Client) queueInvitePortal(inv mucinvite.Invite) {
	me := puppet.UserID(c.account)
	name := inv.Room.Localpart()
	topic := fmt.Sprintf("Invitation from %s to %s: accept to join the group chat", inviterName(inv), inv.Room)
	if inv.Reason != "" {
		topic += " (" + inv.Reason + ")"
	}
	members := &bridgev2.ChatMemberList{MemberMap: bridgev2.ChatMemberMap{
		me: {EventSender: bridgev2.EventSender{IsFromMe: true, SenderLogin: c.login.ID, Sender: me}, Membership: event.MembershipInvite},
	}}
	if inviter := inv.From.Bare(); !inviter.Equal(c.account.Bare()) && !inviter.Equal(inv.Room) && !inviter.Equal(jid.JID{}) {
		members.MemberMap.Set(bridgev2.ChatMember{
			EventSender: bridgev2.EventSender{Sender: puppet.UserID(inviter)},
			Membership:  event.MembershipJoin,
			UserInfo:    c.sharedGhostInfo(inviter),
		})
	}
	c.login.QueueRemoteEvent(&simplevent.ChatResync{
		EventMeta: simplevent.EventMeta{
			Type:         bridgev2.RemoteEventChatResync,
			PortalKey:    c.mucKey(inv.Room),
			CreatePortal: true,
			Timestamp:    time.Now(),
		},
		ChatInfo: &bridgev2.ChatInfo{
			Name:    &name,
			Topic:   &topic,
			Type:    ptr.Ptr(database.RoomTypeDefault),
			Members: members,
			ExtraUpdates: func(ctx context.Context, p *bridgev2.Portal) bool {
				meta, _ := p.Metadata.(*portal.Metadata)
				return meta.SetKind(portal.MUC)
			},
		},
	})
}

// HandleMatrixMembership implements bridgev2.MembershipHandlingNetworkAPI
// for room portals: the user accepting or rejecting the portal's invite,
// and the user inviting a contact's ghost.
func (c *Client) HandleMatrixMembership(ctx context.Context, msg *bridgev2.MatrixMembershipChange) (*bridgev2.MatrixMembershipResult, error) {
	self := msg.Event.GetStateKey() == c.login.UserMXID.String()
	p, err := portal.Parse(msg.Portal.PortalKey)
	if err != nil || p.Kind != portal.MUC {
		if self && (msg.Type == bridgev2.AcceptInvite || msg.Type == bridgev2.Join) {
			// The user entering a chat's portal: nothing to do on XMPP.
			return nil, nil
		}
		return nil, bridgev2.ErrMembershipNotSupported
	}
	room := p.JID
	switch {
	case self && (msg.Type == bridgev2.AcceptInvite || msg.Type == bridgev2.Join):
		c.acceptInvite(ctx, room)
	case self && msg.Type.To == event.MembershipLeave:
		// Rejecting the invite, or leaving the portal (bridgev2 passes
		// these on only with bridge_matrix_leave). Dendrite leaves
		// prev_content out of the events it sends to appservices, so
		// bridgev2 may call either a leave from "leave": the pending
		// invitation says which it was (a join would have taken it).
		var sentAt time.Time
		if msg.Event.Timestamp > 0 {
			sentAt = time.UnixMilli(msg.Event.Timestamp)
		}
		if !c.declineInvite(ctx, room, msg.Content.Reason, sentAt) {
			c.leaveFromMatrix(ctx, room, sentAt)
		}
	case msg.Type == bridgev2.Invite:
		ghost, ok := msg.Target.(*bridgev2.Ghost)
		if !ok {
			return nil, errors.New("only XMPP contacts can be invited into an XMPP group chat")
		}
		contact, err := puppet.ParseUserID(ghost.ID)
		if err != nil {
			return nil, fmt.Errorf("%s is not an XMPP contact (room occupants cannot be invited): %w", ghost.ID, err)
		}
		if err := c.sendMediatedInvite(ctx, room, contact, msg.Content.Reason); err != nil {
			return nil, err
		}
	default:
		// Kicks, bans and the user's own leaves are not bridged.
		return nil, bridgev2.ErrMembershipNotSupported
	}
	return nil, nil
}

// acceptInvite joins room after the user accepted its portal's invite.
// The user's join of every new portal comes here too: rooms already
// joined or kept for rejoins are left alone, and so are rooms the user
// left after the invite (acceptJoins).
func (c *Client) acceptInvite(ctx context.Context, room jid.JID) {
	if !c.acceptJoins(ctx, room) {
		return
	}
	go func() {
		// After a restart the user may accept before the login is up.
		ctx, cancel := context.WithTimeout(c.backgroundCtx(), c.main.Config.sendWait()+2*xmppclient.JoinTimeout)
		defer cancel()
		log := zerolog.Ctx(ctx).With().Stringer("room", room).Logger()
		nick := c.defaultNick()
		if err := c.awaitReady(ctx); err != nil {
			log.Warn().Err(err).Msg("No XMPP session to join the group chat of an accepted invitation")
			c.queueRoomNotice(room, fmt.Sprintf("Could not join the group chat you were invited to: the XMPP connection is down. Send `%s join %s` here once it is back.",
				c.main.Bridge.Config.CommandPrefix, room))
			return
		}
		// The user may have joined or left the room while waiting.
		if !c.acceptJoins(ctx, room) {
			return
		}
		inv, _ := c.pendingInvite(ctx, room)
		start := time.Now()
		if _, err := c.joinRoomPassword(ctx, room, nick, inv.Password); err != nil {
			// The invitation stays: `join` in the portal uses its password.
			log.Warn().Err(err).Msg("Failed to join the group chat of an accepted invitation")
			c.queueRoomNotice(room, "Could not join the group chat you were invited to: "+joinErrorText(room, nick, err))
			return
		}
		if c.leftSince(room, start) {
			// A leave while the join was under way is the user's latest
			// word: out again.
			if err := c.leaveRoom(ctx, room); err != nil {
				log.Warn().Err(err).Msg("Failed to leave the group chat left during its join")
			}
			return
		}
		c.takeInvite(ctx, room)
		if err := c.rememberRoom(ctx, room, nick); err != nil {
			log.Err(err).Msg("Failed to remember the joined room")
		}
		if inv.Password != "" {
			c.storeRoomPassword(ctx, room, inv.Password)
		}
		if err := c.setBookmark(ctx, room, nick, true); err != nil {
			log.Warn().Err(err).Msg("Failed to bookmark the joined room")
		}
		log.Info().Msg("Joined the group chat of an accepted invitation")
	}()
}

// acceptJoins reports whether accepting the invite of room's portal joins
// room now. Not when the room is joined or kept for rejoins (that join
// answers for it), nor when the user left it and no XMPP invitation came
// since: the invite was from before the leave (a notice says how to enter
// the room again).
func (c *Client) acceptJoins(ctx context.Context, room jid.JID) bool {
	r, known := c.mucs.Get(room)
	if known && r.Joined {
		return false
	}
	key := room.Bare().String()
	c.metaMu.Lock()
	meta := c.meta()
	saved := slices.ContainsFunc(meta.Rooms, func(r SavedRoom) bool { return r.JID == key })
	invited, join := acceptDecision(meta.Invites, meta.Left, key)
	c.metaMu.Unlock()
	switch {
	case saved || (known && !invited):
		return false
	case !join:
		zerolog.Ctx(ctx).Info().Stringer("room", room).Msg("Not joining a group chat the user left: its portal's invite is from before the leave")
		c.queueRoomNotice(room, fmt.Sprintf("You left %s, so this Matrix room does not enter it again. Send `%s join %s` here to join it.",
			room, c.main.Bridge.Config.CommandPrefix, room))
		return false
	}
	return true
}

// leftSince reports whether room was left after t.
func (c *Client) leftSince(room jid.JID, t time.Time) bool {
	c.metaMu.Lock()
	defer c.metaMu.Unlock()
	at, ok := leftAt(c.meta().Left, room.Bare().String())
	return ok && at.After(t)
}

// declineInvite answers a rejected invite, sent at sentAt: a mediated
// invitation is declined through the room (once the login is up, after a
// restart); a direct one has no decline (XEP-0249). It reports whether
// there was an invitation to answer; one that arrived after sentAt was
// not (takeInviteAnsweredBy).
func (c *Client) declineInvite(ctx context.Context, room jid.JID, reason string, sentAt time.Time) bool {
	inv, ok := c.takeInviteAnsweredBy(ctx, room, sentAt)
	if !ok {
		return false
	}
	if inv.Kind != mucinvite.Mediated || inv.From.Equal(jid.JID{}) {
		return true
	}
	id := inviteIDPrefix + random.String(12)
	err := c.withSession(ctx, func(s *xmpp.Session) error {
		// The decline is built from values: only writing it can fail.
		if err := xmppclient.SendDecline(ctx, s, room, inv.From, id, reason); err != nil {
			return fmt.Errorf("%w: %w", errSessionLost, err)
		}
		return nil
	})
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Stringer("room", room).Msg("Failed to decline invitation")
	}
	return true
}

// leaveFromMatrix leaves the XMPP room after the user left its portal
// (the leave stamped sentAt by the homeserver), and clears its bookmark's
// autojoin, as the leave command does.
func (c *Client) leaveFromMatrix(ctx context.Context, room jid.JID, sentAt time.Time) {
	_, joined := c.mucs.Get(room)
	saved := false
	var joinedAt int64
	for _, r := range c.savedRooms() {
		if r.JID == room.String() {
			saved, joinedAt = true, r.JoinedAt
		}
	}
	if !joined && !saved {
		return
	}
	if leaveBeforeJoin(joinedAt, sentAt) {
		zerolog.Ctx(ctx).Info().Stringer("room", room).Time("leave_sent", sentAt).Time("joined", time.UnixMilli(joinedAt)).
			Msg("Not leaving the group chat: the Matrix leave is from before the room was joined")
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(c.backgroundCtx(), 2*xmppclient.LeaveTimeout+2*xmppclient.IQTimeout)
		defer cancel()
		log := zerolog.Ctx(ctx).With().Stringer("room", room).Logger()
		if err := c.leaveRoom(ctx, room); err != nil {
			log.Warn().Err(err).Msg("Failed to leave the group chat whose portal the user left")
			return
		}
		if err := c.setBookmark(ctx, room, "", false); err != nil && !errors.Is(err, xmppclient.ErrNotConnected) {
			log.Warn().Err(err).Msg("Failed to clear autojoin of the group chat the user left")
		}
		log.Info().Msg("Left the group chat: the user left its portal")
	}()
}

// sendMediatedInvite asks room to invite contact (XEP-0045 §7.8.2); the
// room adds them to a members-only room's member list when we may.
func (c *Client) sendMediatedInvite(ctx context.Context, room, contact jid.JID, reason string) error {
	if r, ok := c.mucs.Get(room); !ok || !r.Joined {
		return fmt.Errorf("not in %s right now, so nobody can be invited", room)
	}
	s := c.currentSession()
	if s == nil {
		return xmppclient.ErrNotConnected
	}
	if err := xmppclient.SendInvite(ctx, s, room, contact, inviteIDPrefix+random.String(12), reason); err != nil {
		return err
	}
	zerolog.Ctx(ctx).Info().Stringer("room", room).Stringer("contact", contact).Msg("Sent mediated group chat invitation")
	return nil
}

// inviterName is who sent an invitation, as the user knows them: the
// bare JID, or the nick in the room when the room hides the real JID.
func inviterName(inv mucinvite.Invite) string {
	if inv.From.Bare().Equal(inv.Room) && inv.From.Resourcepart() != "" {
		return fmt.Sprintf("%s (in %s)", inv.From.Resourcepart(), inv.Room)
	}
	return inv.From.Bare().String()
}

// inviteIDPrefix marks the ids of the invitations the bridge sends, so
// that the room's error answer can be told to the user.
const inviteIDPrefix = "mxb-inv-"

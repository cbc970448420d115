package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/commands"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// HelpSectionGroups groups the group chat commands in help.
var HelpSectionGroups = commands.HelpSection{Name: "Group chats", Order: 20}

// Errors of group chat command parsing.
var (
	errJoinUsage  = errors.New("usage: `join <room JID> [nick]`, e.g. `join room@conference.example.org`")
	errLeaveUsage = errors.New("usage: `leave <room JID> [--delete]` (in a group chat portal the room may be left out)")
)

// mucCommand is a parsed join or leave command.
type mucCommand struct {
	Room   jid.JID
	Nick   string
	Delete bool
}

// parseRoomArg reads a room JID as typed: room@service, an xmpp: URI
// (xmpp:room@service?join), or room@service/nick.
func parseRoomArg(arg string) (room jid.JID, nick string, err error) {
	arg = strings.TrimPrefix(strings.TrimSpace(arg), "xmpp:")
	if i := strings.IndexByte(arg, '?'); i >= 0 {
		arg = arg[:i]
	}
	j, err := jid.Parse(arg)
	if err != nil {
		return jid.JID{}, "", fmt.Errorf("%q is not a room address (room@conference.example.org): %w", arg, err)
	}
	if j.Localpart() == "" {
		return jid.JID{}, "", fmt.Errorf("%q is a server, not a room (room@%s)", arg, j.Domainpart())
	}
	return j.Bare(), j.Resourcepart(), nil
}

// parseJoinCommand parses the arguments of join.
func parseJoinCommand(args []string) (mucCommand, error) {
	if len(args) < 1 || len(args) > 2 {
		return mucCommand{}, errJoinUsage
	}
	room, nick, err := parseRoomArg(args[0])
	if err != nil {
		return mucCommand{}, err
	}
	if len(args) == 2 {
		nick = strings.TrimSpace(args[1])
	}
	return mucCommand{Room: room, Nick: nick}, nil
}

// parseLeaveCommand parses the arguments of leave; inRoom is the room of
// the portal the command was sent in (zero elsewhere).
func parseLeaveCommand(args []string, inRoom jid.JID) (mucCommand, error) {
	var cmd mucCommand
	var rest []string
	for _, a := range args {
		if a == "--delete" {
			cmd.Delete = true
			continue
		}
		rest = append(rest, a)
	}
	switch {
	case len(rest) == 1:
		room, _, err := parseRoomArg(rest[0])
		if err != nil {
			return mucCommand{}, err
		}
		cmd.Room = room
	case len(rest) == 0 && !inRoom.Equal(jid.JID{}):
		cmd.Room = inRoom
	default:
		return mucCommand{}, errLeaveUsage
	}
	return cmd, nil
}

// joinErrorText says in the user's terms why a join failed.
func joinErrorText(room jid.JID, nick string, err error) string {
	switch {
	case errors.Is(err, mucroom.ErrNotFound):
		return fmt.Sprintf("The group chat %s does not exist. Check the address, or create the room from an XMPP client first.", room)
	case errors.Is(err, xmppclient.ErrNotARoom):
		return fmt.Sprintf("%s is not a group chat (%v).", room, err)
	case errors.Is(err, mucroom.ErrMembersOnly):
		return fmt.Sprintf("%s is members-only and you are not a member. Ask an admin of the room to add you.", room)
	case errors.Is(err, mucroom.ErrBanned):
		return fmt.Sprintf("%s does not let you in: you are banned from it.", room)
	case errors.Is(err, mucroom.ErrPassword):
		return fmt.Sprintf("%s needs a password; password-protected rooms are not supported yet.", room)
	case errors.Is(err, mucroom.ErrFull):
		return fmt.Sprintf("%s is full or unavailable right now.", room)
	case errors.Is(err, mucroom.ErrNoRoomCreation):
		return fmt.Sprintf("%s does not exist and the service does not let you create it.", room)
	case errors.Is(err, mucroom.ErrNickRejected):
		return fmt.Sprintf("%s does not accept the nickname %q; try `join %s <another nick>`.", room, nick, room)
	case errors.Is(err, mucroom.ErrNickConflict):
		return fmt.Sprintf("The nickname %q and its variants are taken in %s; try `join %s <another nick>`.", nick, room, room)
	case errors.Is(err, xmppclient.ErrNotConnected):
		return "Not connected to the XMPP server right now; try again once the bridge has reconnected."
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("%s did not answer in time.", room)
	}
	return fmt.Sprintf("Failed to join %s: %v", room, err)
}

// mucCommandHandlers are the group chat commands.
func (xc *Connector) mucCommandHandlers() []commands.CommandHandler {
	return []commands.CommandHandler{
		&commands.FullHandler{
			Func: xc.cmdJoin,
			Name: "join",
			Help: commands.HelpMeta{
				Section:     HelpSectionGroups,
				Description: "Join an XMPP group chat (MUC) and bridge it to a Matrix room. The nick defaults to your XMPP username.",
				Args:        "<room JID> [nick]",
			},
			RequiresLogin: true,
		},
		&commands.FullHandler{
			Func: xc.cmdLeave,
			Name: "leave",
			Help: commands.HelpMeta{
				Section:     HelpSectionGroups,
				Description: "Leave an XMPP group chat; with --delete the Matrix room is deleted too.",
				Args:        "[room JID] [--delete]",
			},
			RequiresLogin: true,
		},
	}
}

// mucCommandClient picks the login for a group chat command: the portal's
// login in a portal, else the user's default login. inRoom is the portal's
// room, if the command was sent in a group chat portal.
func mucCommandClient(ce *commands.Event) (c *Client, inRoom jid.JID, err error) {
	if ce.Portal != nil {
		if p, err := portal.Parse(ce.Portal.PortalKey); err == nil && p.Kind == portal.MUC {
			inRoom = p.JID
		}
	}
	c, err = commandLogin(ce)
	return c, inRoom, err
}

func (xc *Connector) cmdJoin(ce *commands.Event) {
	c, _, err := mucCommandClient(ce)
	if err != nil {
		ce.Reply("%s", err.Error())
		return
	}
	cmd, err := parseJoinCommand(ce.Args)
	if err != nil {
		ce.Reply("%s", err.Error())
		return
	}
	if cmd.Nick == "" {
		cmd.Nick = c.defaultNick()
	}
	ctx, cancel := context.WithTimeout(ce.Ctx, 2*xmppclient.JoinTimeout)
	defer cancel()
	if r, ok := c.mucs.Get(cmd.Room); ok && r.Joined {
		// Joining again would reset what we know of the room; bring the
		// portal back instead (the user may have left the Matrix room).
		c.queueRoomResync(r)
		ce.Reply("You are already in %s as %s; the bridge invites you to its Matrix room again.", cmd.Room, r.Nick)
		return
	}
	joinedAt := time.Now()
	res, err := c.joinRoom(ctx, cmd.Room, cmd.Nick, xmppclient.JoinOptions{})
	if err != nil {
		ce.Log.Info().Err(err).Stringer("room", cmd.Room).Msg("Join command failed")
		ce.Reply("%s", joinErrorText(cmd.Room, cmd.Nick, err))
		return
	}
	if err := c.rememberRoom(ctx, cmd.Room, cmd.Nick, joinedAt); err != nil {
		ce.Log.Err(err).Msg("Failed to remember joined room")
		ce.Reply("Joined %s as %s, but failed to remember it for reconnects: %v", cmd.Room, res.Nick, err)
		return
	}
	ce.Reply("Joined %s as %s. The Matrix room for it is on its way.", cmd.Room, res.Nick)
}

func (xc *Connector) cmdLeave(ce *commands.Event) {
	c, inRoom, err := mucCommandClient(ce)
	if err != nil {
		ce.Reply("%s", err.Error())
		return
	}
	cmd, err := parseLeaveCommand(ce.Args, inRoom)
	if err != nil {
		ce.Reply("%s", err.Error())
		return
	}
	_, joined := c.mucs.Get(cmd.Room)
	saved := false
	for _, r := range c.savedRooms() {
		saved = saved || r.JID == cmd.Room.String()
	}
	if !joined && !saved && !cmd.Delete {
		ce.Reply("%s is not one of your group chats.", cmd.Room)
		return
	}
	ctx, cancel := context.WithTimeout(ce.Ctx, 2*xmppclient.LeaveTimeout)
	defer cancel()
	if err := c.leaveRoom(ctx, cmd.Room); err != nil {
		ce.Reply("Failed to leave %s: %v", cmd.Room, err)
		return
	}
	if cmd.Delete {
		c.login.QueueRemoteEvent(&simplevent.ChatDelete{
			EventMeta: simplevent.EventMeta{Type: bridgev2.RemoteEventChatDelete, PortalKey: c.mucKey(cmd.Room), Timestamp: time.Now()},
			OnlyForMe: true,
		})
		ce.Reply("Left %s; its Matrix room is being deleted.", cmd.Room)
		return
	}
	ce.Reply("Left %s. The Matrix room stays for its history; `leave %s --delete` removes it.", cmd.Room, cmd.Room)
}

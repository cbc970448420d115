package bridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/commands"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/portal"
	xconn "github.com/mxomemo/xmpp-bridge/xmpp/conn"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// HelpSectionOMEMO groups the OMEMO commands in help.
var HelpSectionOMEMO = commands.HelpSection{Name: "OMEMO encryption", Order: 25}

// omemoUsage is the help text of the omemo command.
const omemoUsage = "Usage:\n" +
	"* `$cmdprefix omemo fingerprint` - show the bridge's OMEMO device and fingerprint\n" +
	"* `$cmdprefix omemo devices [jid]` - list a contact's devices with fingerprints and trust\n" +
	"* `$cmdprefix omemo verify|trust|distrust [jid] <device> [fingerprint]` - set a device's trust\n" +
	"* `$cmdprefix omemo on|off|status` - (in a chat) encrypt this chat with OMEMO or not\n" +
	"In a chat the contact's JID may be left out."

// omemoCommand is a parsed omemo command.
type omemoCommand struct {
	Action      string
	JID         jid.JID
	Device      uint32
	Fingerprint string
}

// Errors of command parsing.
var (
	errUsage         = errors.New("unknown or incomplete omemo command")
	errNeedsPortal   = errors.New("that command only works in a chat room")
	errNeedsJID      = errors.New("name the contact's JID (or use the command in their chat)")
	errBadDeviceID   = errors.New("a device id is a number, see `omemo devices`")
	errNotDMForOMEMO = errors.New("this room is not an XMPP chat")
	// errPMNoOMEMO answers OMEMO commands in a private chat with an
	// occupant (xmppclient.ErrPrivateEncrypted says why).
	errPMNoOMEMO = errors.New("private messages through a group chat cannot be OMEMO-encrypted: the room may hide whose account a nick is, so the bridge cannot know which devices to encrypt for. Messages in this chat go to XMPP unencrypted, as its topic says; use a 1:1 chat with the contact for OMEMO")
)

// parseOMEMOCommand parses the arguments of "omemo". chat is the contact of
// the portal the command was sent in (zero outside portals).
func parseOMEMOCommand(args []string, chat jid.JID) (omemoCommand, error) {
	inChat := !chat.Equal(jid.JID{})
	if len(args) == 0 {
		return omemoCommand{Action: "help"}, nil
	}
	cmd := omemoCommand{Action: strings.ToLower(args[0])}
	rest := args[1:]
	switch cmd.Action {
	case "help", "fingerprint":
		if len(rest) > 0 {
			return cmd, errUsage
		}
		return cmd, nil
	case "on", "off", "status":
		if !inChat {
			return cmd, errNeedsPortal
		}
		if len(rest) > 0 {
			return cmd, errUsage
		}
		cmd.JID = chat
		return cmd, nil
	case "devices":
		switch {
		case len(rest) == 1:
			j, err := xconn.ParseJID(strings.TrimPrefix(rest[0], "xmpp:"))
			if err != nil {
				return cmd, fmt.Errorf("%q is not a JID: %w", rest[0], err)
			}
			cmd.JID = j.Bare()
		case len(rest) == 0 && inChat:
			cmd.JID = chat
		case len(rest) == 0:
			return cmd, errNeedsJID
		default:
			return cmd, errUsage
		}
		return cmd, nil
	case "verify", "trust", "distrust":
		if len(rest) > 0 && strings.Contains(rest[0], "@") {
			j, err := xconn.ParseJID(strings.TrimPrefix(rest[0], "xmpp:"))
			if err != nil {
				return cmd, fmt.Errorf("%q is not a JID: %w", rest[0], err)
			}
			cmd.JID, rest = j.Bare(), rest[1:]
		} else if inChat {
			cmd.JID = chat
		} else {
			return cmd, errNeedsJID
		}
		if len(rest) == 0 {
			return cmd, errUsage
		}
		dev, err := strconv.ParseUint(rest[0], 10, 32)
		if err != nil || dev == 0 {
			return cmd, errBadDeviceID
		}
		cmd.Device = uint32(dev)
		cmd.Fingerprint = strings.Join(rest[1:], " ")
		return cmd, nil
	}
	return cmd, errUsage
}

// trustLevelOf maps a trust command to its level.
func trustLevelOf(action string) omemo.TrustLevel {
	switch action {
	case "verify":
		return omemo.TrustVerified
	case "distrust":
		return omemo.TrustDistrusted
	}
	return omemo.TrustTrusted
}

// formatDevices renders a device list for the devices command.
func formatDevices(owner string, devices []xmppclient.DeviceInfo) string {
	if len(devices) == 0 {
		return fmt.Sprintf("%s has no OMEMO devices.", owner)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "OMEMO devices of %s:\n", owner)
	for _, d := range devices {
		vs := make([]string, len(d.Versions))
		for i, v := range d.Versions {
			vs[i] = v.String()
		}
		fmt.Fprintf(&b, "* %d (OMEMO %s): ", d.ID, strings.Join(vs, ", "))
		if d.Fingerprint == "" {
			fmt.Fprintf(&b, "identity unknown (%v)\n", d.Err)
			continue
		}
		state := d.Level.String()
		if d.Level == omemo.TrustUndecided && d.Trusted {
			state = "trusted blindly"
		} else if !d.Trusted && d.Level == omemo.TrustUndecided {
			state = "undecided (not used)"
		}
		fmt.Fprintf(&b, "`%s` - %s\n", d.Fingerprint, state)
	}
	return strings.TrimRight(b.String(), "\n")
}

// commandHandlers are the connector's bot and portal commands.
func (xc *Connector) commandHandlers() []commands.CommandHandler {
	handlers := append(append(xc.mucCommandHandlers(), xc.omemoCommandHandlers()...), xc.historyCommandHandler())
	return append(handlers, unsupportedCommands()...)
}

// omemoCommandHandlers are the OMEMO commands.
func (xc *Connector) omemoCommandHandlers() []commands.CommandHandler {
	return []commands.CommandHandler{
		&commands.FullHandler{
			Func: xc.cmdOMEMO,
			Name: "omemo",
			Help: commands.HelpMeta{
				Section:     HelpSectionOMEMO,
				Description: "Manage OMEMO encryption: fingerprints, device trust, encrypted chats.",
				Args:        "<fingerprint | devices [jid] | verify/trust/distrust [jid] <device> [fingerprint] | on | off | status>",
			},
			RequiresLogin: true,
		},
	}
}

// commandClient picks the login an OMEMO command applies to and the chat
// it was sent in, if any: the contact of a 1:1 chat, or the room of a group
// chat.
func commandClient(ce *commands.Event) (c *Client, chat, room jid.JID, err error) {
	if ce.Portal != nil {
		p, err := portal.Parse(ce.Portal.PortalKey)
		switch {
		case err != nil:
			return nil, chat, room, errNotDMForOMEMO
		case p.Kind == portal.DM:
			chat = p.JID
		case p.Kind == portal.MUC:
			room = p.JID
		case p.Kind == portal.PM:
			return nil, chat, room, errPMNoOMEMO
		default:
			return nil, chat, room, errNotDMForOMEMO
		}
	}
	c, err = commandLogin(ce)
	return c, chat, room, err
}

// errNotYourPortal: a command about a chat sent in a portal that belongs to
// another Matrix user's login (one who was invited into it, for example).
var errNotYourPortal = errors.New("this chat belongs to another Matrix user's XMPP login: only that user (or a bridge admin) can run commands about it here")

// commandLogin is the login a command applies to: in a portal, the
// portal's login, and only for the Matrix user who owns it (or a bridge
// admin, as bridgev2's permissions define one); outside portals the user's
// default login.
func commandLogin(ce *commands.Event) (*Client, error) {
	var inPortal []*bridgev2.UserLogin
	if ce.Portal != nil {
		var err error
		if inPortal, err = ce.Bridge.GetUserLoginsInPortal(ce.Ctx, ce.Portal.PortalKey); err != nil {
			return nil, fmt.Errorf("failed to look up the chat's logins: %w", err)
		}
		if p, err := portal.Parse(ce.Portal.PortalKey); err == nil && p.Kind == portal.MUC && p.Login == "" {
			// A room portal shared by the logins in the room: the user's
			// logins that are in it count even before bridgev2 linked them.
			for _, l := range ce.User.GetUserLogins() {
				if c, ok := l.Client.(*Client); ok && c.mucs.Known(p.JID) {
					inPortal = append(inPortal, l)
				}
			}
		}
	}
	login, err := pickCommandLogin(ce.User.MXID, ce.User.Permissions.Admin, ce.Portal != nil, inPortal, ce.User.GetDefaultLogin())
	if err != nil {
		return nil, err
	}
	c, ok := login.Client.(*Client)
	if !ok {
		return nil, errors.New("not an XMPP login")
	}
	return c, nil
}

// pickCommandLogin decides commandLogin: inPortal are the logins of the
// portal the command was sent in (inAPortal), def the user's default login.
// A user's own default login never applies to someone else's portal:
// "omemo off" would otherwise change the other user's chat.
func pickCommandLogin(user id.UserID, admin, inAPortal bool, inPortal []*bridgev2.UserLogin, def *bridgev2.UserLogin) (*bridgev2.UserLogin, error) {
	if !inAPortal {
		if def == nil {
			return nil, errors.New("you are not logged in")
		}
		return def, nil
	}
	for _, l := range inPortal {
		if l != nil && l.UserLogin != nil && l.UserMXID == user {
			return l, nil
		}
	}
	if admin {
		for _, l := range inPortal {
			if l != nil && l.UserLogin != nil {
				return l, nil
			}
		}
	}
	return nil, errNotYourPortal
}

func (xc *Connector) cmdOMEMO(ce *commands.Event) {
	c, chat, room, err := commandClient(ce)
	if err != nil {
		ce.Reply("%s", err.Error())
		return
	}
	if !room.Equal(jid.JID{}) && len(ce.Args) == 1 {
		if action := strings.ToLower(ce.Args[0]); action == "on" || action == "off" || action == "status" {
			c.cmdRoomOMEMO(ce, room, action)
			return
		}
	}
	cmd, err := parseOMEMOCommand(ce.Args, chat)
	if err != nil {
		ce.Reply("%s\n\n%s", err.Error(), omemoUsage)
		return
	}
	ctx := ce.Ctx
	switch cmd.Action {
	case "help":
		ce.Reply(omemoUsage)
	case "fingerprint":
		m, err := c.omemoManager(ctx)
		if err != nil {
			ce.Reply("OMEMO is not available: %v", err)
			return
		}
		ce.Reply("The bridge's OMEMO device for %s is %d, fingerprint `%s`.", c.account.Bare(), m.DeviceID(), m.Fingerprint())
	case "devices":
		devices, err := c.listDevices(ctx, cmd.JID)
		if err != nil {
			ce.Reply("Failed to list devices of %s: %v", cmd.JID, err)
			return
		}
		ce.Reply("%s", formatDevices(cmd.JID.String(), devices))
	case "verify", "trust", "distrust":
		d, err := c.setDeviceTrust(ctx, cmd.JID, cmd.Device, cmd.Fingerprint, trustLevelOf(cmd.Action))
		if err != nil {
			ce.Reply("Failed to %s device %d of %s: %v", cmd.Action, cmd.Device, cmd.JID, err)
			return
		}
		ce.Reply("Device %d of %s (`%s`) is now %s.", d.ID, cmd.JID, d.Fingerprint, d.Level)
	case "on", "off":
		meta, ok := ce.Portal.Metadata.(*portal.Metadata)
		if !ok {
			ce.Reply("This room has no XMPP chat metadata.")
			return
		}
		if cmd.Action == "on" {
			if _, err := c.listDevices(ctx, cmd.JID); err != nil && !errors.Is(err, errOMEMOUnavailable) {
				ce.Log.Debug().Err(err).Msg("Device list fetch before omemo on failed")
			}
		}
		if setEncrypted(meta, cmd.Action == "on") {
			if err := ce.Portal.Save(ctx); err != nil {
				ce.Reply("Failed to save: %v", err)
				return
			}
		}
		ce.Reply("%s\n\n%s", hopsTextOf(ctx, c, ce.Portal, meta, cmd.JID), encryptionStateText(meta))
	case "status":
		meta, _ := ce.Portal.Metadata.(*portal.Metadata)
		if meta == nil {
			meta = &portal.Metadata{}
		}
		// Both hops first (chatstatus.go), then what the commands change and
		// the state of our own device's announcement.
		ce.Reply("%s\n\n%s\n\n%s", hopsTextOf(ctx, c, ce.Portal, meta, cmd.JID), encryptionStateText(meta), c.announceStatusText())
	}
}

// encryptionStateText describes a chat's OMEMO state.
func encryptionStateText(meta *portal.Metadata) string {
	switch {
	case meta.OMEMO:
		return "Messages in this chat are sent OMEMO-encrypted (never as plaintext). `omemo off` turns that off."
	case meta.OMEMOOff:
		return "OMEMO is off in this chat: messages are sent unencrypted. `omemo on` turns it on."
	}
	return "This chat is not encrypted yet; it will be once the contact sends an OMEMO message, or with `omemo on`."
}

// HelpSectionGroups groups the group chat commands in help.
var HelpSectionGroups = commands.HelpSection{Name: "Group chats", Order: 20}

// Errors of group chat command parsing.
var (
	errJoinUsage  = errors.New("usage: `join <room JID> [nick] [password]`, e.g. `join room@conference.example.org`")
	errLeaveUsage = errors.New("usage: `leave <room JID> [--delete]` (in a group chat portal the room may be left out)")
)

// mucCommand is a parsed join or leave command.
type mucCommand struct {
	Room     jid.JID
	Nick     string
	Password string
	Delete   bool
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
	if len(args) < 1 || len(args) > 3 {
		return mucCommand{}, errJoinUsage
	}
	room, nick, err := parseRoomArg(args[0])
	if err != nil {
		return mucCommand{}, err
	}
	if len(args) >= 2 {
		nick = strings.TrimSpace(args[1])
	}
	cmd := mucCommand{Room: room, Nick: nick}
	if len(args) == 3 {
		cmd.Password = args[2]
	}
	return cmd, nil
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
		return fmt.Sprintf("%s needs a password: `join %s <nick> <password>`. If you gave one, the room refused it.", room, room)
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
				Description: "Join an XMPP group chat (MUC) and bridge it to a Matrix room, and bookmark it for your other clients. The nick defaults to your XMPP username; a password-protected room needs the password after the nick (stored encrypted, used on rejoins).",
				Args:        "<room JID> [nick] [password]",
			},
			RequiresLogin: true,
		},
		&commands.FullHandler{
			Func: xc.cmdLeave,
			Name: "leave",
			Help: commands.HelpMeta{
				Section:     HelpSectionGroups,
				Description: "Leave an XMPP group chat and clear its bookmark's autojoin; with --delete the Matrix room is deleted too.",
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
	if cmd.Password != "" {
		// The password must not stay in the room's history.
		ce.Redact()
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
	password, keep := c.joinPassword(ctx, cmd.Room, cmd.Password)
	res, err := c.joinRoomPassword(ctx, cmd.Room, cmd.Nick, password)
	if err != nil {
		ce.Log.Info().Err(err).Stringer("room", cmd.Room).Msg("Join command failed")
		if errors.Is(err, mucroom.ErrPassword) && cmd.Password != "" {
			ce.Reply("%s refused the password. Check it and try `join %s %s <password>` again.", cmd.Room, cmd.Room, cmd.Nick)
			return
		}
		ce.Reply("%s", joinErrorText(cmd.Room, cmd.Nick, err))
		return
	}
	if err := c.rememberRoom(ctx, cmd.Room, cmd.Nick); err != nil {
		ce.Log.Err(err).Msg("Failed to remember joined room")
		ce.Reply("Joined %s as %s, but failed to remember it for reconnects: %v", cmd.Room, res.Nick, err)
		return
	}
	c.takeInvite(ctx, cmd.Room)
	if keep != "" {
		if err := c.setRoomPassword(ctx, cmd.Room, keep); err != nil {
			ce.Log.Err(err).Msg("Failed to store room password")
			ce.Reply("Joined %s as %s, but failed to store its password for rejoins: %v", cmd.Room, res.Nick, err)
			return
		}
	}
	note := ""
	if err := c.setBookmark(ctx, cmd.Room, cmd.Nick, true); err != nil {
		note = fmt.Sprintf(" (Its bookmark for your other clients could not be saved: %v.)", err)
	}
	ce.Reply("Joined %s as %s. The Matrix room for it is on its way.%s", cmd.Room, res.Nick, note)
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
	if err := c.setBookmark(ctx, cmd.Room, "", false); err != nil && !errors.Is(err, xmppclient.ErrNotConnected) {
		ce.Reply("Left %s, but its bookmark still says autojoin to your other clients: %v", cmd.Room, err)
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

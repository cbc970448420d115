package bridge

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/commands"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/portal"
	xconn "github.com/mxomemo/xmpp-bridge/xmpp/conn"
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
func formatDevices(owner string, devices []deviceInfo) string {
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

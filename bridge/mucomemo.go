package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2/commands"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucadmin"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// OMEMO in group chats (XEP-0384 "Group chats"). A message is encrypted for
// every device of every member's real JID, so the bridge must know who the
// members are: only rooms that show everyone's real JID (non-anonymous) and
// let only members in (members-only) allow that. Whether a room portal is
// encrypted lives in its metadata as for 1:1 chats (omemochat.go); it turns
// on when a member sends OMEMO in such a room, or with `omemo on`.

// Why a room cannot be OMEMO-encrypted.
var (
	errRoomHidesJIDs = errors.New("the room hides real JIDs (it is not non-anonymous), so the bridge cannot know whose devices to encrypt for")
	errRoomOpen      = errors.New("the room is not members-only, so anyone could enter it without a key")
)

// roomShowsJIDs reports whether everyone in r sees the occupants' real
// JIDs: our own presence said so (status 100), or the room's disco#info.
func roomShowsJIDs(r xmppclient.Room) bool {
	return r.NonAnonymous || r.Features.Anonymity == mucadmin.NonAnonymous
}

// groupOMEMOAllowed says whether r may be OMEMO-encrypted, and if not why.
func groupOMEMOAllowed(r xmppclient.Room) error {
	switch {
	case !roomShowsJIDs(r):
		return errRoomHidesJIDs
	case !r.Features.MembersOnly:
		return errRoomOpen
	}
	return nil
}

// groupRecipients is whom a message in r is encrypted for: the real bare
// JIDs of the room's owners, admins and members (affs) and of the
// occupants, each once, without our own account (whose other devices the
// encryption adds anyway), sorted.
func groupRecipients(affs []mucadmin.Item, r xmppclient.Room, account jid.JID) []jid.JID {
	seen := map[string]jid.JID{}
	add := func(j jid.JID) {
		if j.Equal(jid.JID{}) || j.Localpart() == "" {
			return
		}
		if b := j.Bare(); !b.Equal(account.Bare()) {
			seen[b.String()] = b
		}
	}
	for _, it := range affs {
		switch it.Affiliation {
		case mucadmin.Owner, mucadmin.Admin, mucadmin.Member:
			add(it.JID)
		}
	}
	for _, o := range r.Occupants {
		add(o.RealJID)
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]jid.JID, len(keys))
	for i, k := range keys {
		out[i] = seen[k]
	}
	return out
}

// roomRecipients is the room's affiliation lists (members of members-only
// non-anonymous rooms may read them; read once per join and followed from
// what the room announces, xmppclient.Rooms.Members) and the occupants.
// When the lists cannot be had, the occupants alone are the recipients.
func (c *Client) roomRecipients(ctx context.Context, s *xmpp.Session, r xmppclient.Room) []jid.JID {
	affs, err := c.mucs.Members(ctx, s, r.JID)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Stringer("room", r.JID).Msg("Failed to fetch the room's affiliation lists, encrypting for the occupants only")
	}
	return groupRecipients(affs, r, c.account)
}

// encryptGroupchat encrypts out for every trusted device of the room's
// members and our own other devices (Send builds the stanza around it,
// with the origin-id outside the encryption so the reflection matches). It
// never falls back to plaintext.
func (c *Client) encryptGroupchat(ctx context.Context, s *xmpp.Session, r xmppclient.Room, out *xmppclient.Outgoing) (*omemoxmpp.Outgoing, error) {
	if c.omemoClient() == nil {
		return nil, groupEncryptionStatus(errOMEMOUnavailable)
	}
	members := c.roomRecipients(ctx, s, r)
	// Network first, the ratchet lock for the encryption alone.
	enc, err := c.omemo.EncryptGroup(ctx, r.JID, members, out.Body)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Stringer("room", r.JID).Int("members", len(members)).Msg("Not sending groupchat message: OMEMO encryption failed")
		return nil, groupEncryptionStatus(err)
	}
	c.countOMEMOSessions(ctx)
	if len(enc.Errors) > 0 {
		zerolog.Ctx(ctx).Debug().Int("skipped_devices", len(enc.Errors)).Msg("Some OMEMO devices were skipped")
	}
	return enc, nil
}

// groupEncryptionStatus is the message status of a Matrix message that
// could not be encrypted for a group chat.
func groupEncryptionStatus(err error) error {
	return groupSendStatusText(err, groupEncryptionFailureText(err))
}

// groupEncryptionFailureText says why a message was not sent in an
// encrypted group chat.
func groupEncryptionFailureText(err error) string {
	const prefix = "Not sent: this group chat is OMEMO-encrypted and "
	var devErr *omemoxmpp.DeviceError
	switch {
	case errors.Is(err, omemoxmpp.ErrNoDevices):
		return prefix + "no member has an OMEMO device. Use `omemo off` in this room to send unencrypted messages."
	case errors.As(err, &devErr):
		return fmt.Sprintf(prefix+"none of the members' %d OMEMO device(s) is trusted or reachable. "+
			"Check them with `omemo devices <member JID>` and trust or verify one.", len(devErr.Devices))
	case errors.Is(err, omemoxmpp.ErrNoTrustedDevices):
		return prefix + "no trusted OMEMO device of any member remains. Check them with `omemo devices <member JID>`."
	case errors.Is(err, errOMEMOUnavailable):
		return prefix + "the bridge's OMEMO device is not ready (not connected yet?)."
	}
	return prefix + "encryption failed: " + err.Error()
}

// hiddenJIDNotice is shown for an OMEMO message whose sender's real JID the
// room hides: without it there is no session to decrypt with.
const hiddenJIDNotice = "sent an OMEMO-encrypted message, but the bridge cannot decrypt it: the room hides real JIDs " +
	"(OMEMO in group chats needs a non-anonymous, members-only room)."

// isOwnReflection reports whether in is the room's reflection of a message
// the bridge sent: never encrypted for our own device, and matched to the
// pending Matrix message instead of bridged.
func isOwnReflection(in *incoming) bool {
	return in.Room != nil && in.Sender.IsFromMe && strings.HasPrefix(string(in.TxnID), bridgeIDPrefix)
}

// cmdRoomOMEMO is `omemo on|off|status` in a group chat's portal.
func (c *Client) cmdRoomOMEMO(ce *commands.Event, room jid.JID, action string) {
	meta, ok := ce.Portal.Metadata.(*portal.Metadata)
	if !ok {
		ce.Reply("This room has no XMPP chat metadata.")
		return
	}
	r, joined := c.mucs.Get(room)
	joined = joined && r.Joined
	switch action {
	case "on":
		if !joined {
			ce.Reply("%s", errNotInRoom.Error())
			return
		}
		if err := groupOMEMOAllowed(r); err != nil {
			ce.Reply("OMEMO cannot be used in this group chat: %s. OMEMO in group chats needs a non-anonymous, members-only room.", err.Error())
			return
		}
		if s := c.currentSession(); s != nil && c.omemoClient() != nil {
			c.omemo.RefreshMembers(ce.Ctx, c.roomRecipients(ce.Ctx, s, r))
		}
		fallthrough
	case "off":
		if setEncrypted(meta, action == "on") {
			if err := ce.Portal.Save(ce.Ctx); err != nil {
				ce.Reply("Failed to save: %v", err)
				return
			}
		}
	}
	text := encryptionStateText(meta)
	if !meta.OMEMO && !meta.OMEMOOff {
		text = "This group chat is not encrypted yet; it will be once a member sends an OMEMO message, or with `omemo on`."
	}
	if !meta.OMEMO && joined {
		if err := groupOMEMOAllowed(r); err != nil {
			text += " OMEMO cannot be used in this group chat: " + err.Error() + "."
		}
	}
	// Both hops, as in 1:1 chats (chatstatus.go).
	ce.Reply("%s\n%s\n\n%s", c.matrixHopText(ce.Ctx, ce.Portal), groupXMPPHopText(meta), text)
}

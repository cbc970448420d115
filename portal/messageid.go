package portal

import (
	"errors"
	"fmt"
	"strings"

	"maunium.net/go/mautrix/bridgev2/networkid"
	"mellium.im/xmpp/jid"
)

// ErrBadMessageID is returned for message IDs not made by MakeMessageID.
var ErrBadMessageID = errors.New("portal: not an XMPP message ID")

// MakeMessageID builds the bridgev2 message ID of an XMPP message.
//
// bridgev2 keeps message IDs unique per login, not per portal, and the id
// attribute of a message is chosen by its sender, so the chat and the sender
// are part of the ID: a contact can never collide with (or overwrite) a
// message in another chat or one of ours. chat and sender are bare JIDs,
// which contain no '/'; sender is empty for MUC messages keyed by the room's
// stanza-id.
func MakeMessageID(chat, sender jid.JID, xmppID string) networkid.MessageID {
	s := ""
	if !sender.Equal(jid.JID{}) {
		s = sender.Bare().String()
	}
	return networkid.MessageID(chat.Bare().String() + "/" + s + "/" + xmppID)
}

// ParsedMessageID is a message ID taken apart.
type ParsedMessageID struct {
	Chat   string
	Sender string
	ID     string
}

// ParseMessageID takes apart an ID made by MakeMessageID.
func ParseMessageID(id networkid.MessageID) (ParsedMessageID, error) {
	parts := strings.SplitN(string(id), "/", 3)
	if len(parts) != 3 || parts[0] == "" || parts[2] == "" {
		return ParsedMessageID{}, fmt.Errorf("%w: %q", ErrBadMessageID, id)
	}
	return ParsedMessageID{Chat: parts[0], Sender: parts[1], ID: parts[2]}, nil
}

// The xmpp part of a group chat message's ID: the room's stanza-id when
// the room stamped one, else the sender's nick and the id it gave.
const (
	roomStanzaPrefix = "sid:"
	roomNickPrefix   = "nick:"
)

// RoomMessageID is the ID of a group chat message: by the room's
// stanza-id when it stamped one (what replies, reactions and retractions
// name), else by the sender's nick and id (rooms without XEP-0359).
func RoomMessageID(room jid.JID, stanzaID, nick, id string) networkid.MessageID {
	if stanzaID != "" {
		return MakeMessageID(room, jid.JID{}, roomStanzaPrefix+stanzaID)
	}
	return MakeMessageID(room, jid.JID{}, roomNickPrefix+nick+"/"+id)
}

// StanzaID is the room's stanza-id an ID of RoomMessageID was keyed by, ""
// for one keyed otherwise.
func (p ParsedMessageID) StanzaID() string {
	s, _ := strings.CutPrefix(p.ID, roomStanzaPrefix)
	if s == p.ID {
		return ""
	}
	return s
}

// SenderGivenID is the id the sender gave a group chat message whose ID
// RoomMessageID keyed by nick, "" for one keyed otherwise.
func (p ParsedMessageID) SenderGivenID() string {
	rest, ok := strings.CutPrefix(p.ID, roomNickPrefix)
	if !ok {
		return ""
	}
	_, id, _ := strings.Cut(rest, "/")
	return id
}

// roomPrivatePrefix marks the xmpp part of a private message with a room
// occupant (XEP-0045 §7.5), which names the occupant's nick.
const roomPrivatePrefix = "pm:"

// nickEscaper keeps a nick's '/' out of the separator (a nick may hold one).
var nickEscaper = strings.NewReplacer("%", "%25", "/", "%2F")

// PrivateMessageID is the ID of a private message with a room occupant
// (room@service/nick), sent by sender (the room's bare JID for the
// occupant, our account for ours). The nick is part of it: two occupants
// choosing the same id are two messages.
func PrivateMessageID(occupant, sender jid.JID, xmppID string) networkid.MessageID {
	return MakeMessageID(occupant.Bare(), sender, roomPrivatePrefix+nickEscaper.Replace(occupant.Resourcepart())+"/"+xmppID)
}

// LegacyPrivateMessageID is the ID earlier versions stored for a private
// message with an occupant (without the nick); still read, so that
// corrections reach messages bridged before and those are not bridged
// again.
func LegacyPrivateMessageID(occupant, sender jid.JID, xmppID string) networkid.MessageID {
	return MakeMessageID(occupant.Bare(), sender, xmppID)
}

// PrivateGivenID is the id the sender gave a private message with an
// occupant, from an ID of PrivateMessageID or LegacyPrivateMessageID.
func (p ParsedMessageID) PrivateGivenID() string {
	rest, ok := strings.CutPrefix(p.ID, roomPrivatePrefix)
	if !ok {
		return p.ID
	}
	_, id, _ := strings.Cut(rest, "/")
	return id
}

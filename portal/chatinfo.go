package portal

import (
	"context"
	"fmt"

	"go.mau.fi/util/ptr"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/event"
	"mellium.im/xmpp/jid"
)

// The chat info bridgev2 keeps each portal up to date with, for the three
// kinds of chat, from plain data: the connector hands in who is in the chat
// (ghost ids and their user info, made by the puppet package and the
// protocol client's state); the shape of each kind of chat is decided here.

// kindUpdate records k in the portal's metadata when bridgev2 applies the
// info (ChatInfo.ExtraUpdates).
func kindUpdate(k Kind) func(context.Context, *bridgev2.Portal) bool {
	return func(_ context.Context, p *bridgev2.Portal) bool {
		meta, _ := p.Metadata.(*Metadata)
		return meta.SetKind(k)
	}
}

// directMembers is the full member list of a direct chat: the user, with
// is_direct on the invite so that clients list the portal as a direct chat
// (and add it to m.direct when the user accepts; with double puppeting
// bridgev2 writes m.direct itself), and the other side unless it is the
// user (a chat with one's own account).
func directMembers(self bridgev2.EventSender, other bridgev2.ChatMember) *bridgev2.ChatMemberList {
	members := &bridgev2.ChatMemberList{
		IsFull:      true,
		OtherUserID: other.Sender,
		MemberMap: bridgev2.ChatMemberMap{
			self.Sender: {EventSender: self, Membership: event.MembershipJoin, MemberEventExtra: map[string]any{"is_direct": true}},
		},
	}
	if other.Sender != self.Sender {
		other.Membership = event.MembershipJoin
		members.MemberMap[other.Sender] = other
	}
	return members
}

// DMInfo is the chat info of a 1:1 chat between the user (self) and a
// contact (other: its ghost and user info). Its history comes from the
// account's archive.
func DMInfo(self bridgev2.EventSender, other bridgev2.ChatMember) *bridgev2.ChatInfo {
	return &bridgev2.ChatInfo{
		Members:      directMembers(self, other),
		Type:         ptr.Ptr(database.RoomTypeDM),
		CanBackfill:  true,
		ExtraUpdates: kindUpdate(DM),
	}
}

// PMInfo is the chat info of a private chat with a room occupant
// (room@service/nick): named after the nick and the room, a direct chat
// with the occupant's ghost (other), and a topic saying that the room
// relays the messages unencrypted.
func PMInfo(occupant jid.JID, self bridgev2.EventSender, other bridgev2.ChatMember) *bridgev2.ChatInfo {
	name := fmt.Sprintf("%s (private, %s)", occupant.Resourcepart(), occupant.Bare())
	topic := fmt.Sprintf("Private messages with %s, an occupant of the group chat %s. The room relays them; they are not encrypted.", occupant.Resourcepart(), occupant.Bare())
	return &bridgev2.ChatInfo{
		Name:         &name,
		Topic:        &topic,
		Type:         ptr.Ptr(database.RoomTypeDM),
		Members:      directMembers(self, other),
		ExtraUpdates: kindUpdate(PM),
	}
}

// RoomInfo is the chat info of a group chat: its name, its subject as the
// topic (nil: unknown, left as it is), and the members while we are in it
// (nil otherwise: bridgev2 keeps the ones it has).
func RoomInfo(name string, topic *string, members *bridgev2.ChatMemberList) *bridgev2.ChatInfo {
	return &bridgev2.ChatInfo{
		Name:         &name,
		Topic:        topic,
		Type:         ptr.Ptr(database.RoomTypeDefault),
		Members:      members,
		ExtraUpdates: kindUpdate(MUC),
	}
}

// RoomMembers is the full member list of a group chat we are in: the user
// (self) and the other occupants' ghosts (two occupants may share one: the
// same account from two clients); total counts the occupants, us included.
func RoomMembers(self bridgev2.EventSender, others []bridgev2.ChatMember, total int) *bridgev2.ChatMemberList {
	members := &bridgev2.ChatMemberList{
		IsFull:           true,
		MemberMap:        bridgev2.ChatMemberMap{self.Sender: {EventSender: self, Membership: event.MembershipJoin}},
		TotalMemberCount: total,
	}
	for _, m := range others {
		members.MemberMap.Add(m)
	}
	return members
}

// MemberChange is the chat info change of one member entering or leaving
// a group chat after our join.
func MemberChange(m bridgev2.ChatMember) *bridgev2.ChatInfoChange {
	return &bridgev2.ChatInfoChange{MemberChanges: &bridgev2.ChatMemberList{MemberMap: bridgev2.ChatMemberMap{}.Set(m)}}
}

package bridge

import (
	"slices"
	"time"
)

// Rooms the user left through the bridge (`leave`, leaving the portal with
// bridge_matrix_leave, autojoin cleared on another client) are remembered
// until the room is joined again. The Matrix invite to a room's portal may
// be older than the leave (the portal of a `join`, answered only after
// `leave`), and accepting it must not enter the room again: the user's
// latest word was to leave. A new XMPP invitation is kept as pending and
// still joins when its invite is accepted.

// maxLeftRooms bounds the rooms remembered as left per login; the oldest
// go first (accepting an invite of such a room joins it, as before).
const maxLeftRooms = 100

// LeftRoom is a room the user left and has not joined since.
type LeftRoom struct {
	Room string    `json:"room"`
	At   time.Time `json:"at"`
}

// withLeft is left with room left at at, replacing an earlier mark of it
// and dropping the oldest beyond maxLeftRooms.
func withLeft(left []LeftRoom, room string, at time.Time) []LeftRoom {
	left = withoutLeft(left, room)
	left = append(left, LeftRoom{Room: room, At: at})
	if n := len(left) - maxLeftRooms; n > 0 {
		left = slices.Delete(left, 0, n)
	}
	return left
}

// withoutLeft is left without room's mark.
func withoutLeft(left []LeftRoom, room string) []LeftRoom {
	return slices.DeleteFunc(left, func(l LeftRoom) bool { return l.Room == room })
}

// leftAt is when room was left, if it is marked.
func leftAt(left []LeftRoom, room string) (time.Time, bool) {
	i := slices.IndexFunc(left, func(l LeftRoom) bool { return l.Room == room })
	if i < 0 {
		return time.Time{}, false
	}
	return left[i].At, true
}

// acceptDecision says what accepting the invite of room's portal does:
// invited when an XMPP invitation to room came after the room was last
// left (its password and decline go with it); join unless the user left
// the room and no invitation came since. With neither a mark nor an
// invitation (one dropped beyond maxPendingInvites, or lost) it joins, as
// the invite can only have come from the bridge.
func acceptDecision(invites []SavedInvite, left []LeftRoom, room string) (invited, join bool) {
	at, wasLeft := leftAt(left, room)
	i := slices.IndexFunc(invites, func(s SavedInvite) bool { return s.Room == room })
	invited = i >= 0 && (!wasLeft || invites[i].At.After(at))
	return invited, invited || !wasLeft
}

// inviteAnsweredBy reports whether a Matrix leave sent at sentAt (the
// homeserver's origin_server_ts) answers the invitation s: one sent before
// the invitation arrived is a late leave of an earlier invite (the
// appservice transaction came late, or from the inbox after a restart) and
// must neither take nor decline it.
func inviteAnsweredBy(s SavedInvite, sentAt time.Time) bool {
	return sentAt.IsZero() || !s.At.Truncate(time.Millisecond).After(sentAt)
}

// leaveBeforeJoin reports whether a Matrix leave of a room's portal sent at
// sentAt is older than the room's saved first join (joinedAt, Unix ms; 0
// not joined yet): a late leave of an earlier invite or membership, which
// must not leave the room the user has joined since (an invitation
// accepted after it).
func leaveBeforeJoin(joinedAt int64, sentAt time.Time) bool {
	return joinedAt != 0 && !sentAt.IsZero() && sentAt.UnixMilli() < joinedAt
}

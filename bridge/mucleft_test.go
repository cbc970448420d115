package bridge

import (
	"fmt"
	"testing"
	"time"
)

// TestAcceptDecision: accepting a room portal's invite joins the room
// unless the user left it and no XMPP invitation came since; an invitation
// from before the leave does not count.
func TestAcceptDecision(t *testing.T) {
	const room = "room@muc.example.org"
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	inviteAt := func(at time.Time) []SavedInvite { return []SavedInvite{{Room: room, Kind: "direct", At: at}} }
	leftAtT := []LeftRoom{{Room: room, At: t0}}
	for _, tc := range []struct {
		name          string
		invites       []SavedInvite
		left          []LeftRoom
		invited, join bool
	}{
		{name: "invitation, never left", invites: inviteAt(t0), invited: true, join: true},
		{name: "no invitation, never left (lost invitation)", join: true},
		{name: "left, no invitation since (invite from before the leave)", left: leftAtT},
		{name: "left, then invited again", invites: inviteAt(t0.Add(time.Second)), left: leftAtT, invited: true, join: true},
		{name: "invitation from before the leave", invites: inviteAt(t0.Add(-time.Second)), left: leftAtT},
		{name: "invitation at the same instant as the leave", invites: inviteAt(t0), left: leftAtT},
		{name: "another room left", invites: nil, left: []LeftRoom{{Room: "other@muc.example.org", At: t0}}, join: true},
		{name: "invitation to another room", invites: []SavedInvite{{Room: "other@muc.example.org", At: t0.Add(time.Second)}}, left: leftAtT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			invited, join := acceptDecision(tc.invites, tc.left, room)
			if invited != tc.invited || join != tc.join {
				t.Errorf("invited %v, join %v; want %v, %v", invited, join, tc.invited, tc.join)
			}
		})
	}
}

// TestInviteAnsweredBy: a Matrix leave answers an invitation only if the
// homeserver stamped it no earlier than the invitation arrived (to the
// millisecond, the homeserver's precision).
func TestInviteAnsweredBy(t *testing.T) {
	at := time.Date(2026, 12, 7, 12, 0, 0, 500_600_000, time.UTC) // .5006 s
	inv := SavedInvite{Room: "room@muc.example.org", At: at}
	for _, tc := range []struct {
		name   string
		sentAt time.Time
		want   bool
	}{
		{name: "after the invitation", sentAt: at.Add(2 * time.Second), want: true},
		{name: "same millisecond", sentAt: time.UnixMilli(at.UnixMilli()), want: true},
		{name: "a millisecond before", sentAt: time.UnixMilli(at.UnixMilli() - 1)},
		{name: "before the invitation (late transaction)", sentAt: at.Add(-3 * time.Second)},
		{name: "no timestamp", want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := inviteAnsweredBy(inv, tc.sentAt); got != tc.want {
				t.Errorf("answered = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestWithLeft: a room is marked once, with its latest leave; past
// maxLeftRooms the oldest marks go; withoutLeft clears one.
func TestWithLeft(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	var left []LeftRoom
	for i := range maxLeftRooms + 5 {
		left = withLeft(left, fmt.Sprintf("r%d@muc.example.org", i), t0.Add(time.Duration(i)*time.Second))
	}
	if len(left) != maxLeftRooms || left[0].Room != "r5@muc.example.org" {
		t.Fatalf("kept %d, oldest %q; want %d from r5", len(left), left[0].Room, maxLeftRooms)
	}
	later := t0.Add(time.Hour)
	left = withLeft(left, "r10@muc.example.org", later)
	if at, ok := leftAt(left, "r10@muc.example.org"); !ok || !at.Equal(later) || len(left) != maxLeftRooms {
		t.Errorf("r10 left at %v (%v), %d marks; want %v once", at, ok, len(left), later)
	}
	left = withoutLeft(left, "r10@muc.example.org")
	if _, ok := leftAt(left, "r10@muc.example.org"); ok || len(left) != maxLeftRooms-1 {
		t.Errorf("r10 still marked after withoutLeft (%d marks)", len(left))
	}
}

// TestLeaveBeforeJoin: a Matrix leave older than the room's saved first
// join does not leave it; one after it, or without either time, does.
func TestLeaveBeforeJoin(t *testing.T) {
	joined := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		joinedAt int64
		sentAt   time.Time
		want     bool
	}{
		{name: "leave after the join", joinedAt: joined.UnixMilli(), sentAt: joined.Add(time.Minute)},
		{name: "leave in the join's millisecond", joinedAt: joined.UnixMilli(), sentAt: joined},
		{name: "late leave from before the join", joinedAt: joined.UnixMilli(), sentAt: joined.Add(-3 * time.Second), want: true},
		{name: "room saved, not joined yet", sentAt: joined},
		{name: "no timestamp", joinedAt: joined.UnixMilli()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := leaveBeforeJoin(tc.joinedAt, tc.sentAt); got != tc.want {
				t.Errorf("leaveBeforeJoin = %v, want %v", got, tc.want)
			}
		})
	}
}

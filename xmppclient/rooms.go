package xmppclient

import (
	"context"
	"errors"
	"maps"
	"sync"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/mucadmin"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
)

// Group chats (XEP-0045 MUC): Rooms is what the current XMPP session knows
// about the login's rooms: who is in them, our nick, the subject. It is
// rebuilt from the room's presences on every join.

// ErrNotConnected is returned when sending while the connection is down,
// and to joins pending when it went.
var ErrNotConnected = errors.New("xmppclient: not connected to the XMPP server")

// Occupant is someone else in a room.
type Occupant struct {
	Nick string
	// RealJID is the occupant's bare JID when the room shows it to us
	// (non-anonymous rooms, or to moderators); zero otherwise.
	RealJID     jid.JID
	Affiliation mucadmin.Affiliation
	Role        string
}

// Room is the live state of one room of the login (the connector stores
// what it needs to join it again).
type Room struct {
	JID jid.JID // bare
	// Nick is ours in the room.
	Nick string
	Info mucroom.Info
	// Subject is the room's subject, once the room sent one.
	Subject *string
	// NonAnonymous: the room shows real JIDs to everyone, as our own
	// presence said at the join (status 100) or a configuration change
	// since (172; 173 and 174 clear it, roomconfig.go).
	NonAnonymous bool
	// Features is what the room's disco#info said before the join, read
	// again after each configuration change: anonymity and whether it is
	// members-only (OMEMO needs both).
	Features mucadmin.RoomInfo
	// Joined is set once our own presence came back (the room then sent
	// everyone already in it), and cleared when we are out of the room.
	Joined    bool
	Occupants map[string]Occupant
	// JoinStarted is when our latest join presence was about to be sent:
	// any message the room gave us live is from after it.
	JoinStarted time.Time

	joining chan JoinResult // while a join waits for the room's answer
	leaving chan struct{}   // while a leave waits for our unavailable presence
	// syncPending is set from our own presence until TakeSync (the connector
	// syncs its portal then):
	// the room's subject, which ends the join (XEP-0045 §7.2.15), comes
	// after our presence and belongs in that sync.
	syncPending bool
	// members is the room's affiliation lists as this join knows them
	// (roommembers.go).
	members memberList
	// configEpoch counts joins and configuration changes: a read of the
	// room's features started before one is not kept (roomconfig.go).
	configEpoch uint64
}

// JoinResult is the room's answer to a join.
type JoinResult struct {
	Nick    string
	Created bool // we created the room (status 201)
	Err     error
}

// copy is a snapshot of r for use outside the lock.
func (r *Room) copy() Room { return r.snapshot(maps.Clone(r.Occupants)) }

// snapshot is a copy of r with occupants as its Occupants.
func (r *Room) snapshot(occupants map[string]Occupant) Room {
	c := *r
	c.Occupants = occupants
	c.joining, c.leaving = nil, nil
	c.members = memberList{}
	return c
}

// Rooms is the login's rooms, by bare JID.
type Rooms struct {
	mu    sync.Mutex
	rooms map[string]*Room
	// readMembers asks a room for its affiliation lists (roommembers.go).
	readMembers func(context.Context, *xmpp.Session, jid.JID) ([]mucadmin.Item, error)
	// readFeatures asks a room for its disco#info after a configuration
	// change (roomconfig.go).
	readFeatures func(context.Context, *xmpp.Session, jid.JID) (mucroom.Info, mucadmin.RoomInfo, error)
}

func NewRooms() *Rooms {
	return &Rooms{rooms: map[string]*Room{}, readMembers: mucadmin.Members, readFeatures: readRoomFeatures}
}

// Known reports whether stanzas from room belong to a room of the login.
func (rs *Rooms) Known(room jid.JID) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	_, ok := rs.rooms[room.Bare().String()]
	return ok
}

// Get returns a snapshot of room.
func (rs *Rooms) Get(room jid.JID) (Room, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, ok := rs.rooms[room.Bare().String()]
	if !ok {
		return Room{}, false
	}
	return r.copy(), true
}

// GetFor is Get for one message from nick: the snapshot's Occupants hold
// that occupant alone (none when nick is not in the room, or ""). A
// message needs only its sender, and copying every occupant cost the
// room's size on each message.
func (rs *Rooms) GetFor(room jid.JID, nick string) (Room, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, ok := rs.rooms[room.Bare().String()]
	if !ok {
		return Room{}, false
	}
	var one map[string]Occupant
	if o, ok := r.Occupants[nick]; ok {
		one = map[string]Occupant{nick: o}
	}
	return r.snapshot(one), true
}

// StartJoin prepares room for a join as nick and returns where the room's
// answer will arrive.
func (rs *Rooms) StartJoin(room jid.JID, nick string, info mucroom.Info, features mucadmin.RoomInfo) <-chan JoinResult {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	key := room.Bare().String()
	r, ok := rs.rooms[key]
	if !ok {
		r = &Room{JID: room.Bare()}
		rs.rooms[key] = r
	}
	// Status 100 in our presence says again whether real JIDs are shown.
	r.Nick, r.Info, r.Features, r.Joined, r.NonAnonymous = nick, info, features, false, false
	r.configEpoch++
	r.JoinStarted = time.Now()
	r.Occupants = map[string]Occupant{}
	r.members.invalidate()
	if info.Subject != "" && r.Subject == nil {
		s := info.Subject
		r.Subject = &s
	}
	r.joining = make(chan JoinResult, 1)
	return r.joining
}

// StartLeave returns what closes when our unavailable presence came back;
// nil if we are not in room.
func (rs *Rooms) StartLeave(room jid.JID) (nick string, done <-chan struct{}) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, ok := rs.rooms[room.Bare().String()]
	if !ok || !r.Joined {
		return "", nil
	}
	r.leaving = make(chan struct{})
	return r.Nick, r.leaving
}

// Remove forgets room.
func (rs *Rooms) Remove(room jid.JID) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	delete(rs.rooms, room.Bare().String())
}

// TakeSync returns room's state if its portal sync after a join is still
// pending, and marks it done; false if there is nothing to sync.
func (rs *Rooms) TakeSync(room jid.JID) (Room, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, ok := rs.rooms[room.Bare().String()]
	if !ok || !r.Joined || !r.syncPending {
		return Room{}, false
	}
	r.syncPending = false
	return r.copy(), true
}

// SetSubject records the room's subject; it reports whether room is known.
func (rs *Rooms) SetSubject(room jid.JID, subject string) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, ok := rs.rooms[room.Bare().String()]
	if ok {
		r.Subject = &subject
	}
	return ok
}

// Disconnected marks every room left: the server drops our occupants with
// the session. Pending joins fail.
func (rs *Rooms) Disconnected() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, r := range rs.rooms {
		r.Joined = false
		r.Occupants = map[string]Occupant{}
		r.members.invalidate()
		if r.joining != nil {
			r.joining <- JoinResult{Err: ErrNotConnected}
			r.joining = nil
		}
		if r.leaving != nil {
			close(r.leaving)
			r.leaving = nil
		}
	}
}

// RoomChange is what a presence changed in a room.
type RoomChange int

const (
	ChangeNone           RoomChange = iota
	ChangeSelfJoined                // our join completed; the room's occupants are all known
	ChangeSelfLeft                  // we are out of the room (left, kicked, banned, …)
	ChangeJoinFailed                // the room refused our join
	ChangeOccupantJoined            // someone entered the room after us
	ChangeOccupantLeft              // someone left
)

// PresenceOutcome is what applyPresence did.
type PresenceOutcome struct {
	Change   RoomChange
	Occupant Occupant
	// Status holds the presence's status codes (why we left, …).
	Status []int
	// Config is set when the presence announced a configuration change.
	Config *ConfigChange
}

// ApplyPresence updates the room a presence came from. ok is false for
// presences from rooms the login is not in. room is a snapshot after the
// update; for ChangeOccupantLeft it no longer holds the Occupant.
func (rs *Rooms) ApplyPresence(p mucroom.Presence) (room Room, out PresenceOutcome, ok bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, ok := rs.rooms[p.From.Bare().String()]
	if !ok {
		return Room{}, out, false
	}
	out.Status = p.User.Status
	nick := p.Nick()
	if p.Type != stanza.ErrorPresence && p.HasUser {
		// Occupants' affiliation changes come as their presence, also
		// when they leave because of it (status 321, 301).
		out.Config = applyConfigStatus(r, p.User.Status)
		r.members.note(p.User.Item)
	}
	switch {
	case p.Type == stanza.ErrorPresence:
		if r.joining != nil && p.Error != nil {
			r.joining <- JoinResult{Err: mucroom.JoinError(*p.Error)}
			r.joining = nil
			out.Change = ChangeJoinFailed
		}
	case p.Self() || (nick == r.Nick && nick != ""):
		rs.applySelf(r, p, &out)
	case nick == "":
		// Presence of the room itself: nothing to track.
	case p.Available():
		_, existed := r.Occupants[nick]
		o := Occupant{Nick: nick, RealJID: p.User.Item.JID.Bare(), Affiliation: p.User.Item.Affiliation, Role: p.User.Item.Role}
		r.Occupants[nick] = o
		if r.Joined && !existed {
			out.Change, out.Occupant = ChangeOccupantJoined, o
		}
	case p.Type == stanza.UnavailablePresence:
		o, existed := r.Occupants[nick]
		delete(r.Occupants, nick)
		if r.Joined && existed {
			out.Change, out.Occupant = ChangeOccupantLeft, o
		}
	}
	return r.copy(), out, true
}

// applySelf handles our own presence in r.
func (rs *Rooms) applySelf(r *Room, p mucroom.Presence, out *PresenceOutcome) {
	switch {
	case p.Available():
		// The room may have changed our nick (status 210).
		r.Nick = p.Nick()
		if p.User.HasStatus(mucadmin.StatusNonAnonymous) {
			r.NonAnonymous = true
		}
		if r.Joined {
			return
		}
		r.Joined = true
		r.syncPending = true
		out.Change = ChangeSelfJoined
		if r.joining != nil {
			r.joining <- JoinResult{Nick: r.Nick, Created: p.User.HasStatus(mucroom.StatusRoomCreated)}
			r.joining = nil
		}
	case p.Type == stanza.UnavailablePresence:
		if newNick, ok := p.NewNick(); ok {
			r.Nick = newNick
			return
		}
		wasJoined := r.Joined
		r.Joined = false
		r.Occupants = map[string]Occupant{}
		r.members.invalidate()
		if r.leaving != nil {
			close(r.leaving)
			r.leaving = nil
		}
		if wasJoined {
			out.Change = ChangeSelfLeft
		}
	}
}

// HasMember reports whether j (bare) is an occupant, by real JID, of one
// of the rooms.
func (rs *Rooms) HasMember(j jid.JID) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, r := range rs.rooms {
		for _, o := range r.Occupants {
			if o.RealJID.Bare().Equal(j) {
				return true
			}
		}
	}
	return false
}

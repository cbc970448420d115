package bridge

import (
	"maps"
	"sync"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/puppet"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucadmin"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
)

// Group chats (XEP-0045 MUC). Each login takes part in rooms as itself, and
// each room it joined is a portal of that login alone (portal.MUCKey with
// split set): two logins in one room are two occupants with two views of
// it, like two accounts in a 1:1 chat with the same contact.
//
// mucRooms is what the current XMPP session knows about the login's rooms:
// who is in them, our nick, the subject. It is rebuilt from the room's
// presences on every join. Which rooms to be in survives restarts in the
// login metadata (UserLoginMetadata.Rooms).

// occupant is someone else in a room.
type occupant struct {
	Nick string
	// RealJID is the occupant's bare JID when the room shows it to us
	// (non-anonymous rooms, or to moderators); zero otherwise.
	RealJID     jid.JID
	Affiliation mucadmin.Affiliation
	Role        string
}

// mucRoom is the live state of one room of the login (SavedRoom is what is
// stored to join it again).
type mucRoom struct {
	JID jid.JID // bare
	// Nick is ours in the room.
	Nick string
	Info mucroom.Info
	// Subject is the room's subject, once the room sent one.
	Subject      *string
	NonAnonymous bool
	// Features is what the room's disco#info said before the join:
	// anonymity and whether it is members-only (OMEMO needs both).
	Features mucadmin.RoomInfo
	// Joined is set once our own presence came back (the room then sent
	// everyone already in it), and cleared when we are out of the room.
	Joined    bool
	Occupants map[string]occupant

	joining chan joinResult // while a join waits for the room's answer
	leaving chan struct{}   // while a leave waits for our unavailable presence
	// syncPending is set from our own presence until the portal is synced:
	// the room's subject, which ends the join (XEP-0045 §7.2.15), comes
	// after our presence and belongs in that sync.
	syncPending bool
}

// joinResult is the room's answer to a join.
type joinResult struct {
	Nick    string
	Created bool // we created the room (status 201)
	Err     error
}

// ghost is the Matrix-side identity of occupant o: the shared ghost of
// its real JID when the room shows it, else a ghost for the occupant JID.
// Ourselves (the account, from any client) is fromMe.
func (r *mucRoom) ghost(o occupant, account jid.JID) (id networkid.UserID, fromMe bool) {
	if o.Nick == r.Nick {
		return puppet.UserID(account), true
	}
	if !o.RealJID.Equal(jid.JID{}) {
		if o.RealJID.Bare().Equal(account.Bare()) {
			return puppet.UserID(account), true
		}
		return puppet.UserID(o.RealJID), false
	}
	occ, err := r.JID.WithResource(o.Nick)
	if err != nil {
		// Nicks come from parsed JIDs, so this cannot happen.
		return "", false
	}
	return puppet.OccupantUserID(occ), false
}

// sender is who sent something as nick, as bridgev2 sees it.
func (r *mucRoom) sender(nick string, account jid.JID, login networkid.UserLoginID) bridgev2.EventSender {
	o, ok := r.Occupants[nick]
	if !ok {
		o = occupant{Nick: nick}
	}
	id, fromMe := r.ghost(o, account)
	if fromMe {
		return bridgev2.EventSender{IsFromMe: true, SenderLogin: login, Sender: id}
	}
	return bridgev2.EventSender{Sender: id}
}

// hasGhost reports whether an occupant other than except is the ghost id
// (someone in the room from two clients with two nicks).
func (r *mucRoom) hasGhost(id networkid.UserID, except string, account jid.JID) bool {
	for nick, o := range r.Occupants {
		if nick == except {
			continue
		}
		if g, _ := r.ghost(o, account); g == id {
			return true
		}
	}
	return false
}

// copy is a snapshot of r for use outside the lock.
func (r *mucRoom) copy() mucRoom {
	c := *r
	c.Occupants = maps.Clone(r.Occupants)
	c.joining, c.leaving = nil, nil
	return c
}

// mucRooms is the login's rooms, by bare JID.
type mucRooms struct {
	mu    sync.Mutex
	rooms map[string]*mucRoom
}

func newMUCRooms() *mucRooms {
	return &mucRooms{rooms: map[string]*mucRoom{}}
}

// known reports whether stanzas from room belong to a room of the login.
func (rs *mucRooms) known(room jid.JID) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	_, ok := rs.rooms[room.Bare().String()]
	return ok
}

// get returns a snapshot of room.
func (rs *mucRooms) get(room jid.JID) (mucRoom, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, ok := rs.rooms[room.Bare().String()]
	if !ok {
		return mucRoom{}, false
	}
	return r.copy(), true
}

// startJoin prepares room for a join as nick and returns where the room's
// answer will arrive.
func (rs *mucRooms) startJoin(room jid.JID, nick string, info mucroom.Info, features mucadmin.RoomInfo) <-chan joinResult {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	key := room.Bare().String()
	r, ok := rs.rooms[key]
	if !ok {
		r = &mucRoom{JID: room.Bare()}
		rs.rooms[key] = r
	}
	r.Nick, r.Info, r.Features, r.Joined = nick, info, features, false
	r.Occupants = map[string]occupant{}
	if info.Subject != "" && r.Subject == nil {
		s := info.Subject
		r.Subject = &s
	}
	r.joining = make(chan joinResult, 1)
	return r.joining
}

// startLeave returns what closes when our unavailable presence came back;
// nil if we are not in room.
func (rs *mucRooms) startLeave(room jid.JID) (nick string, done <-chan struct{}) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, ok := rs.rooms[room.Bare().String()]
	if !ok || !r.Joined {
		return "", nil
	}
	r.leaving = make(chan struct{})
	return r.Nick, r.leaving
}

// remove forgets room.
func (rs *mucRooms) remove(room jid.JID) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	delete(rs.rooms, room.Bare().String())
}

// takeSync returns room's state if its portal sync after a join is still
// pending, and marks it done; false if there is nothing to sync.
func (rs *mucRooms) takeSync(room jid.JID) (mucRoom, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, ok := rs.rooms[room.Bare().String()]
	if !ok || !r.Joined || !r.syncPending {
		return mucRoom{}, false
	}
	r.syncPending = false
	return r.copy(), true
}

// setSubject records the room's subject; it reports whether room is known.
func (rs *mucRooms) setSubject(room jid.JID, subject string) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, ok := rs.rooms[room.Bare().String()]
	if ok {
		r.Subject = &subject
	}
	return ok
}

// disconnected marks every room left: the server drops our occupants with
// the session. Pending joins fail.
func (rs *mucRooms) disconnected() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, r := range rs.rooms {
		r.Joined = false
		r.Occupants = map[string]occupant{}
		if r.joining != nil {
			r.joining <- joinResult{Err: errNotConnected}
			r.joining = nil
		}
		if r.leaving != nil {
			close(r.leaving)
			r.leaving = nil
		}
	}
}

// mucChange is what a presence changed in a room.
type mucChange int

const (
	changeNone           mucChange = iota
	changeSelfJoined               // our join completed; the room's occupants are all known
	changeSelfLeft                 // we are out of the room (left, kicked, banned, …)
	changeJoinFailed               // the room refused our join
	changeOccupantJoined           // someone entered the room after us
	changeOccupantLeft             // someone left
)

// presenceOutcome is what applyPresence did.
type presenceOutcome struct {
	Change   mucChange
	Occupant occupant
	// Status holds the presence's status codes (why we left, …).
	Status []int
}

// applyPresence updates the room a presence came from. ok is false for
// presences from rooms the login is not in. room is a snapshot after the
// update; for changeOccupantLeft it no longer holds the occupant.
func (rs *mucRooms) applyPresence(p mucroom.Presence) (room mucRoom, out presenceOutcome, ok bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, ok := rs.rooms[p.From.Bare().String()]
	if !ok {
		return mucRoom{}, out, false
	}
	out.Status = p.User.Status
	nick := p.Nick()
	switch {
	case p.Type == stanza.ErrorPresence:
		if r.joining != nil && p.Error != nil {
			r.joining <- joinResult{Err: mucroom.JoinError(*p.Error)}
			r.joining = nil
			out.Change = changeJoinFailed
		}
	case p.Self() || (nick == r.Nick && nick != ""):
		rs.applySelf(r, p, &out)
	case nick == "":
		// Presence of the room itself: nothing to track.
	case p.Available():
		_, existed := r.Occupants[nick]
		o := occupant{Nick: nick, RealJID: p.User.Item.JID.Bare(), Affiliation: p.User.Item.Affiliation, Role: p.User.Item.Role}
		r.Occupants[nick] = o
		if r.Joined && !existed {
			out.Change, out.Occupant = changeOccupantJoined, o
		}
	case p.Type == stanza.UnavailablePresence:
		o, existed := r.Occupants[nick]
		delete(r.Occupants, nick)
		if r.Joined && existed {
			out.Change, out.Occupant = changeOccupantLeft, o
		}
	}
	return r.copy(), out, true
}

// applySelf handles our own presence in r.
func (rs *mucRooms) applySelf(r *mucRoom, p mucroom.Presence, out *presenceOutcome) {
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
		out.Change = changeSelfJoined
		if r.joining != nil {
			r.joining <- joinResult{Nick: r.Nick, Created: p.User.HasStatus(mucroom.StatusRoomCreated)}
			r.joining = nil
		}
	case p.Type == stanza.UnavailablePresence:
		if newNick, ok := p.NewNick(); ok {
			r.Nick = newNick
			return
		}
		wasJoined := r.Joined
		r.Joined = false
		r.Occupants = map[string]occupant{}
		if r.leaving != nil {
			close(r.leaving)
			r.leaving = nil
		}
		if wasJoined {
			out.Change = changeSelfLeft
		}
	}
}

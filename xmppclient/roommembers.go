package xmppclient

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/mucadmin"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
)

// A room's owners, admins and members are whom an OMEMO message in it is
// encrypted for. Asking the room costs three round trips, so, as
// Conversations and Dino do, they are read once per room and session (at
// the first encrypted message) and then followed from what the room tells
// its occupants: the affiliation in each occupant's presence, and the
// room's own messages about the affiliations of users who are not in it
// (XEP-0045 §9.3–9.8, §10.3–10.7). A configuration change, a new join or
// a new session makes the lists read again.

// memberRetry is how long after a failed read of a room's affiliation
// lists the next message asks again; meanwhile the occupants alone are the
// recipients, as after the failure itself.
const memberRetry = 10 * time.Second

// memberList is what this session knows of one room's affiliation lists.
// It lives in Room, under Rooms' lock.
type memberList struct {
	// known: read in this session and followed since.
	known bool
	// byJID holds the owners, admins and members by bare JID.
	byJID map[string]mucadmin.Item
	// reading is closed when the running read ends; nil while none runs.
	reading chan struct{}
	// changes are the affiliations the room announced while a read ran,
	// replayed over its answer: the answer may be older than any of them.
	changes []mucadmin.Item
	// epoch counts invalidations; a read started before one is not kept.
	epoch uint64
	// failed is the last read's error, not asked again before retryAt.
	failed  error
	retryAt time.Time
}

// invalidate forgets the lists: what was read no longer holds (a new join
// or session, a configuration change).
func (m *memberList) invalidate() {
	m.known, m.byJID, m.changes = false, nil, nil
	m.failed, m.retryAt = nil, time.Time{}
	m.epoch++
}

// note applies an affiliation the room announced for a real JID.
func (m *memberList) note(it mucadmin.Item) {
	if it.JID.Equal(jid.JID{}) || it.Affiliation == "" {
		return
	}
	switch {
	case m.known:
		m.set(it)
	case m.reading != nil:
		m.changes = append(m.changes, it)
	}
}

// set records it: owners, admins and members are kept, anyone else
// (none, outcast) removed.
func (m *memberList) set(it mucadmin.Item) {
	it.JID = it.JID.Bare()
	key := it.JID.String()
	switch it.Affiliation {
	case mucadmin.Owner, mucadmin.Admin, mucadmin.Member:
		if m.byJID == nil {
			m.byJID = map[string]mucadmin.Item{}
		}
		m.byJID[key] = mucadmin.Item{JID: it.JID, Affiliation: it.Affiliation}
	default:
		delete(m.byJID, key)
	}
}

// finish ends the read started at epoch with its answer.
func (m *memberList) finish(epoch uint64, items []mucadmin.Item, err error, now time.Time) {
	changes := m.changes
	m.reading, m.changes = nil, nil
	switch {
	case epoch != m.epoch:
		// Invalidated meanwhile: the answer is for the caller only.
	case err != nil:
		m.failed, m.retryAt = err, now.Add(memberRetry)
	default:
		m.known, m.byJID, m.failed = true, nil, nil
		for _, it := range items {
			m.set(it)
		}
		for _, it := range changes {
			m.set(it)
		}
	}
}

// list is the members in JID order.
func (m *memberList) list() []mucadmin.Item {
	out := make([]mucadmin.Item, 0, len(m.byJID))
	for _, it := range m.byJID {
		out = append(out, it)
	}
	slices.SortFunc(out, func(a, b mucadmin.Item) int { return strings.Compare(a.JID.String(), b.JID.String()) })
	return out
}

// Members returns room's owners, admins and members (bare JIDs, each with
// its highest affiliation): what this session read and has followed since,
// else read from the room now (three IQs) and kept while we stay in it. A
// failed read is kept for memberRetry only; its error is returned until
// then, and the caller falls back to the occupants.
func (rs *Rooms) Members(ctx context.Context, s *xmpp.Session, room jid.JID) ([]mucadmin.Item, error) {
	key := room.Bare().String()
	for {
		rs.mu.Lock()
		r, ok := rs.rooms[key]
		if !ok || !r.Joined {
			rs.mu.Unlock()
			// Not in the room: nothing would keep an answer current.
			return rs.readMembers(ctx, s, room)
		}
		m := &r.members
		switch {
		case m.known:
			items := m.list()
			rs.mu.Unlock()
			return items, nil
		case m.reading != nil:
			wait := m.reading
			rs.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("failed to wait for the affiliation lists of %s: %w", room, ctx.Err())
			}
		case time.Now().Before(m.retryAt):
			err, wait := m.failed, time.Until(m.retryAt).Round(time.Second)
			rs.mu.Unlock()
			return nil, fmt.Errorf("%w (asked again in %s)", err, wait)
		}
		done, epoch := make(chan struct{}), m.epoch
		m.reading = done
		rs.mu.Unlock()

		items, err := rs.readMembers(ctx, s, room)

		rs.mu.Lock()
		if ctx.Err() != nil && err != nil {
			// Our caller gave up: that says nothing of the room.
			m.reading, m.changes = nil, nil
		} else {
			m.finish(epoch, items, err, time.Now())
		}
		close(done)
		rs.mu.Unlock()
		return items, err
	}
}

// ApplyRoomMessage follows what a live message from the room itself (its
// bare JID) says: an affiliation change of a user who is not in the room
// (muc#user <item/>), or a configuration change (then cfg is set). It
// reports whether m was such a message. Delayed messages (history) say
// nothing of now.
func (rs *Rooms) ApplyRoomMessage(m mucroom.Message) (ok bool, cfg *ConfigChange) {
	if !m.HasUser || m.From.Resourcepart() != "" || !m.Delay.IsZero() {
		return false, nil
	}
	return rs.applyRoomUser(m.From, m.User)
}

// ApplyAnnouncement is ApplyRoomMessage for a message that is not of type
// groupchat (Prosody and ejabberd announce affiliation changes of absent
// users in such a message, from the room's bare JID); it reports whether
// in was one.
func (rs *Rooms) ApplyAnnouncement(in Inbound) (ok bool, cfg *ConfigChange) {
	// Every 1:1 message passes here: the cheap child test first.
	if in.Kind != KindChat || in.Stanza == nil || !in.Stanza.HasChild(mucadmin.NSUser, "x") {
		return false, nil
	}
	from, err := jid.Parse(in.From)
	if err != nil || from.Resourcepart() != "" || !rs.Known(from) {
		return false, nil
	}
	u, ok, err := mucadmin.ParseUser(in.Stanza.Reader())
	if err != nil || !ok {
		return false, nil
	}
	return rs.applyRoomUser(from, u)
}

// applyRoomUser applies the room's own muc#user payload u.
func (rs *Rooms) applyRoomUser(room jid.JID, u mucadmin.User) (bool, *ConfigChange) {
	hasItem := !u.Item.JID.Equal(jid.JID{}) && u.Item.Affiliation != ""
	if !hasItem && !roomConfigChanged(u.Status) {
		return false, nil
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, ok := rs.rooms[room.Bare().String()]
	if !ok {
		return false, nil
	}
	cfg := applyConfigStatus(r, u.Status)
	if hasItem {
		r.members.note(u.Item)
	}
	return true, cfg
}

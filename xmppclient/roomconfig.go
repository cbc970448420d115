package xmppclient

import (
	"context"
	"fmt"
	"slices"

	"mellium.im/xmpp"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/mucadmin"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
)

// A room's owner may reconfigure it while we are in it. The room then
// tells its occupants (XEP-0045 §10.2.1): status 104 for any change, so
// that they read its configuration again, and 172, 173 or 174 when real
// JIDs are now shown to everyone, to moderators only, or to nobody. What
// OMEMO depends on (who sees real JIDs, members-only) must follow: the
// privacy codes are applied at once, the rest when the room's disco#info,
// read again, answers.

// ConfigChange is a configuration change of a room as this session
// followed it from the room's status codes.
type ConfigChange struct {
	// Before and After are the room around the status codes.
	Before, After Room
	epoch         uint64
}

// roomConfigChanged reports whether status codes of the room say its
// configuration changed (§10.2.1: 104, and 172–174 for who sees real
// JIDs).
func roomConfigChanged(status []int) bool {
	return slices.ContainsFunc(status, func(c int) bool {
		return c == mucadmin.StatusConfigChanged || (c >= mucadmin.StatusNowNonAnonymous && c <= mucadmin.StatusNowFullyAnonymous)
	})
}

// applyConfigStatus applies the configuration change status codes say to
// r: who sees real JIDs now, and the member lists to be read again. It
// returns nil when status says no change.
func applyConfigStatus(r *Room, status []int) *ConfigChange {
	if !roomConfigChanged(status) {
		return nil
	}
	before := r.copy()
	r.members.invalidate()
	r.configEpoch++
	for _, c := range status {
		switch c {
		case mucadmin.StatusNowNonAnonymous:
			r.NonAnonymous, r.Features.Anonymity = true, mucadmin.NonAnonymous
		case mucadmin.StatusNowSemiAnonymous:
			r.NonAnonymous, r.Features.Anonymity = false, mucadmin.SemiAnonymous
		case mucadmin.StatusNowFullyAnonymous:
			r.NonAnonymous, r.Features.Anonymity = false, mucadmin.FullyAnonymous
		}
	}
	return &ConfigChange{Before: before, After: r.copy(), epoch: r.configEpoch}
}

// readRoomFeatures asks room for its disco#info.
func readRoomFeatures(ctx context.Context, s *xmpp.Session, room jid.JID) (mucroom.Info, mucadmin.RoomInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, IQTimeout)
	defer cancel()
	info, err := disco.GetInfo(ctx, "", room.Bare(), s)
	if err != nil {
		return mucroom.Info{}, mucadmin.RoomInfo{}, fmt.Errorf("failed to read the disco#info of %s after its configuration changed: %w", room, err)
	}
	return mucroom.InfoFrom(info), mucadmin.RoomInfoFrom(info), nil
}

// RefreshFeatures reads the room of cfg's disco#info again, as §10.2.1
// asks after a configuration change, and keeps it unless we rejoined or
// the room changed again meanwhile (changed is false then). A room whose
// disco#info names no anonymity keeps what the status codes said.
func (rs *Rooms) RefreshFeatures(ctx context.Context, s *xmpp.Session, cfg *ConfigChange) (before, after Room, changed bool, err error) {
	info, features, err := rs.readFeatures(ctx, s, cfg.After.JID)
	if err != nil {
		return Room{}, Room{}, false, err
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, ok := rs.rooms[cfg.After.JID.Bare().String()]
	if !ok || !r.Joined || r.configEpoch != cfg.epoch {
		return Room{}, Room{}, false, nil
	}
	before = r.copy()
	if features.Anonymity == mucadmin.AnonymityUnknown {
		features.Anonymity = r.Features.Anonymity
	} else {
		r.NonAnonymous = features.Anonymity == mucadmin.NonAnonymous
	}
	r.Info, r.Features = info, features
	return before, r.copy(), true, nil
}

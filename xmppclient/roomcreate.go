package xmppclient

import (
	"context"
	"errors"
	"fmt"

	"github.com/rs/zerolog"
	"mellium.im/xmpp"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/disco/items"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/mucadmin"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
)

// Creating rooms (XEP-0045 §10.1): the account's MUC service is found by
// disco, the room is entered (which creates it, locked) and configured.

// ErrNoMUCService: the account's server lists no group chat service.
var ErrNoMUCService = errors.New("xmppclient: the server offers no group chat service")

// ErrRoomExists: the room to be created is someone else's already.
var ErrRoomExists = errors.New("xmppclient: the room exists already")

// FindMUCService returns the first item of the account's server that is a
// text conference service (disco#items, then disco#info of each).
func FindMUCService(ctx context.Context, s *xmpp.Session) (jid.JID, error) {
	ctx, cancel := context.WithTimeout(ctx, IQTimeout)
	defer cancel()
	server := s.LocalAddr().Domain()
	var found []jid.JID
	iter := disco.FetchItems(ctx, items.Item{JID: server}, s)
	for iter.Next() {
		found = append(found, iter.Item().JID)
	}
	err := iter.Err()
	if cerr := iter.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return jid.JID{}, fmt.Errorf("failed to list the services of %s: %w", server, err)
	}
	for _, j := range found {
		info, err := disco.GetInfo(ctx, "", j, s)
		if err != nil {
			continue
		}
		for _, id := range info.Identity {
			if id.Category == "conference" && id.Type == "text" {
				return j, nil
			}
		}
	}
	return jid.JID{}, fmt.Errorf("%w (%s)", ErrNoMUCService, server)
}

// Create makes room (which must not exist) on s as its owner with nick and
// submits config; the room's features are then read again, so that OMEMO
// knows at once whether it is members-only and non-anonymous.
func (rs *Rooms) Create(ctx context.Context, s *xmpp.Session, room jid.JID, nick string, config []mucroom.ConfigField) (JoinResult, error) {
	room = room.Bare()
	occ, err := room.WithResource(nick)
	if err != nil {
		return JoinResult{}, fmt.Errorf("%w: %q: %w", mucroom.ErrNickRejected, nick, err)
	}
	answer := rs.StartJoin(room, nick, mucroom.Info{}, mucadmin.RoomInfo{})
	join := mucroom.Join{Occupant: occ, ID: stanzaID(), MaxStanzas: 0}
	if err := s.Send(ctx, join.TokenReader()); err != nil {
		rs.Remove(room)
		return JoinResult{}, fmt.Errorf("failed to send join presence to %s: %w", room, err)
	}
	res, err := waitJoin(ctx, answer)
	if err != nil {
		rs.Remove(room)
		return JoinResult{}, err
	}
	if !res.Created {
		_ = rs.Leave(ctx, s, room)
		return JoinResult{}, fmt.Errorf("%w: %s", ErrRoomExists, room)
	}
	if err := mucroom.Configure(ctx, s, room, config); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Stringer("room", room).Msg("The new room refused its configuration, leaving it")
		_ = rs.Leave(ctx, s, room)
		return JoinResult{}, err
	}
	info, features, err := roomInfo(ctx, s, room)
	if err == nil {
		rs.mu.Lock()
		if r, ok := rs.rooms[room.String()]; ok {
			r.Info, r.Features = info, features
			if features.Anonymity == mucadmin.NonAnonymous {
				r.NonAnonymous = true
			}
		}
		rs.mu.Unlock()
	}
	return res, nil
}

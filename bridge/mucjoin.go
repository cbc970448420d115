package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/random"
	"mellium.im/xmpp"
	"mellium.im/xmpp/disco"
	discoinfo "mellium.im/xmpp/disco/info"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/mucadmin"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
)

// SavedRoom is a room the login stays in across restarts, as stored in the
// login metadata; mucRoom (mucstate.go) is the live state of a joined room.
type SavedRoom struct {
	JID string `json:"jid"`
	// Nick is the nick asked for; the room may have given us a variant.
	Nick string `json:"nick,omitempty"`
}

const (
	// mucJoinTimeout bounds the wait for the room's answer to a join.
	mucJoinTimeout = 30 * time.Second
	// mucLeaveTimeout bounds the wait for our unavailable presence.
	mucLeaveTimeout = 10 * time.Second
)

// errNotARoom: the JID answers disco#info as something else than a room.
var errNotARoom = errors.New("not a group chat")

// nickCandidates are the nicks a join tries in turn while the room says
// the nick is taken (409 conflict).
func nickCandidates(nick string) []string {
	return []string{nick, nick + "_", nick + "_2", nick + "_3"}
}

// defaultNick is the nick when the user names none: the account's
// localpart.
func (c *Client) defaultNick() string {
	if l := c.account.Localpart(); l != "" {
		return l
	}
	return "matrix"
}

// roomInfo asks the room for its disco#info before joining: it tells a
// missing room from one that refuses us, without creating it, and gives the
// room's name and the features OMEMO depends on.
func roomInfo(ctx context.Context, s *xmpp.Session, room jid.JID) (mucroom.Info, mucadmin.RoomInfo, error) {
	// A room service that never answers must not hold the join forever.
	ctx, cancel := context.WithTimeout(ctx, iqTimeout)
	defer cancel()
	info, err := disco.GetInfo(ctx, "", room, s)
	var se stanza.Error
	switch {
	case errors.As(err, &se) && (se.Condition == stanza.ItemNotFound || se.Condition == stanza.RemoteServerNotFound):
		return mucroom.Info{}, mucadmin.RoomInfo{}, fmt.Errorf("%w: %w", mucroom.ErrNotFound, err)
	case err != nil:
		// Some services hide rooms from disco; the join will tell.
		zerolog.Ctx(ctx).Debug().Err(err).Stringer("room", room).Msg("Room disco#info failed, joining anyway")
		return mucroom.Info{}, mucadmin.RoomInfo{}, nil
	}
	if !slices.ContainsFunc(info.Identity, func(id discoinfo.Identity) bool { return id.Category == "conference" }) && len(info.Identity) > 0 {
		return mucroom.Info{}, mucadmin.RoomInfo{}, fmt.Errorf("%w: %s is a %s/%s", errNotARoom, room, info.Identity[0].Category, info.Identity[0].Type)
	}
	return mucroom.InfoFrom(info), mucadmin.RoomInfoFrom(info), nil
}

// joinRoom enters room as nick, or as a variant of it while the nick is
// taken, and waits until the room has sent its occupants. The portal is
// created or resynced from our own presence (handlemuc.go).
func (c *Client) joinRoom(ctx context.Context, room jid.JID, nick string) (joinResult, error) {
	s := c.currentSession()
	if s == nil {
		return joinResult{}, errNotConnected
	}
	room = room.Bare()
	log := zerolog.Ctx(ctx).With().Stringer("room", room).Logger()
	info, features, err := roomInfo(ctx, s, room)
	if err != nil {
		return joinResult{}, err
	}
	candidates := nickCandidates(nick)
	for _, n := range candidates {
		occ, err := room.WithResource(n)
		if err != nil {
			return joinResult{}, fmt.Errorf("%w: %q: %w", mucroom.ErrNickRejected, n, err)
		}
		answer := c.mucs.startJoin(room, n, info, features)
		join := mucroom.Join{Occupant: occ, ID: random.String(16), MaxStanzas: 0}
		if err := s.Send(ctx, join.TokenReader()); err != nil {
			c.mucs.remove(room)
			return joinResult{}, fmt.Errorf("failed to send join presence to %s: %w", room, err)
		}
		res, err := waitJoin(ctx, answer)
		if errors.Is(err, mucroom.ErrNickConflict) {
			log.Info().Str("nick", n).Msg("Nick taken in group chat, trying another")
			continue
		}
		if err != nil {
			c.mucs.remove(room)
			return joinResult{}, err
		}
		if res.Created {
			// Our disco#info said the room existed; someone removed it in
			// between. An instant room at least is not left locked.
			if err := mucroom.MakeInstant(ctx, s, room); err != nil {
				log.Warn().Err(err).Msg("Failed to unlock the room we created")
			}
		}
		log.Info().Str("nick", res.Nick).Msg("Joined group chat")
		return res, nil
	}
	c.mucs.remove(room)
	return joinResult{}, fmt.Errorf("%w: tried %s", mucroom.ErrNickConflict, strings.Join(candidates, ", "))
}

func waitJoin(ctx context.Context, answer <-chan joinResult) (joinResult, error) {
	t := time.NewTimer(mucJoinTimeout)
	defer t.Stop()
	select {
	case res := <-answer:
		return res, res.Err
	case <-t.C:
		return joinResult{}, fmt.Errorf("the room did not answer the join in %v: %w", mucJoinTimeout, context.DeadlineExceeded)
	case <-ctx.Done():
		return joinResult{}, ctx.Err()
	}
}

// leaveRoom exits room (when connected) and forgets it, also in the login
// metadata, so that it is not rejoined.
func (c *Client) leaveRoom(ctx context.Context, room jid.JID) error {
	room = room.Bare()
	defer c.mucs.remove(room)
	if err := c.forgetRoom(ctx, room); err != nil {
		return err
	}
	s := c.currentSession()
	nick, done := c.mucs.startLeave(room)
	if s == nil || done == nil {
		return nil
	}
	occ, err := room.WithResource(nick)
	if err != nil {
		return fmt.Errorf("failed to leave %s: %w", room, err)
	}
	if err := s.Send(ctx, mucroom.Leave(occ, random.String(16), "")); err != nil {
		return fmt.Errorf("failed to send leave presence to %s: %w", room, err)
	}
	select {
	case <-done:
	case <-time.After(mucLeaveTimeout):
		zerolog.Ctx(ctx).Warn().Stringer("room", room).Msg("The room did not confirm that we left")
	case <-ctx.Done():
	}
	return nil
}

// savedRooms are the rooms to be in, from the login metadata.
func (c *Client) savedRooms() []SavedRoom {
	c.metaMu.Lock()
	defer c.metaMu.Unlock()
	return slices.Clone(c.meta().Rooms)
}

// rememberRoom stores room in the login metadata so that it is rejoined
// after a reconnect or restart.
func (c *Client) rememberRoom(ctx context.Context, room jid.JID, nick string) error {
	c.metaMu.Lock()
	defer c.metaMu.Unlock()
	meta := c.meta()
	entry := SavedRoom{JID: room.Bare().String(), Nick: nick}
	i := slices.IndexFunc(meta.Rooms, func(r SavedRoom) bool { return r.JID == entry.JID })
	switch {
	case i < 0:
		meta.Rooms = append(meta.Rooms, entry)
	case meta.Rooms[i] == entry:
		return nil
	default:
		meta.Rooms[i] = entry
	}
	if err := c.login.Save(ctx); err != nil {
		return fmt.Errorf("failed to save joined room %s: %w", room, err)
	}
	return nil
}

// forgetRoom removes room from the login metadata.
func (c *Client) forgetRoom(ctx context.Context, room jid.JID) error {
	c.metaMu.Lock()
	defer c.metaMu.Unlock()
	meta := c.meta()
	key := room.Bare().String()
	n := len(meta.Rooms)
	meta.Rooms = slices.DeleteFunc(meta.Rooms, func(r SavedRoom) bool { return r.JID == key })
	if len(meta.Rooms) == n {
		return nil
	}
	if err := c.login.Save(ctx); err != nil {
		return fmt.Errorf("failed to forget room %s: %w", room, err)
	}
	return nil
}

// rejoinRooms enters the saved rooms again after (re)connecting. A room
// that refuses us gets a notice in its portal; it stays saved, so a
// passing problem does not lose it.
func (c *Client) rejoinRooms(ctx context.Context, s *xmpp.Session) {
	for _, saved := range c.savedRooms() {
		if ctx.Err() != nil || c.currentSession() != s {
			return
		}
		room, err := jid.Parse(saved.JID)
		if err != nil {
			continue
		}
		nick := saved.Nick
		if nick == "" {
			nick = c.defaultNick()
		}
		joinCtx, cancel := context.WithTimeout(ctx, 2*mucJoinTimeout)
		_, err = c.joinRoom(joinCtx, room, nick)
		cancel()
		if err != nil && ctx.Err() == nil {
			zerolog.Ctx(ctx).Warn().Err(err).Stringer("room", room).Msg("Failed to rejoin group chat")
			c.queueRoomNotice(room, "Could not rejoin the group chat: "+joinErrorText(room, nick, err))
		}
	}
}

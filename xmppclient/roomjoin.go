package xmppclient

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp"
	"mellium.im/xmpp/disco"
	discoinfo "mellium.im/xmpp/disco/info"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/mucadmin"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
)

const (
	// JoinTimeout bounds the wait for the room's answer to a join.
	JoinTimeout = 30 * time.Second
	// LeaveTimeout bounds the wait for our unavailable presence.
	LeaveTimeout = 10 * time.Second
	// IQTimeout bounds the client's own IQ round trips that mellium's
	// packages make without one (disco, MUC configuration).
	IQTimeout = 30 * time.Second
)

// ErrNotARoom: the JID answers disco#info as something else than a room.
var ErrNotARoom = errors.New("not a group chat")

// NickCandidates are the nicks a join tries in turn while the room says
// the nick is taken (409 conflict).
func NickCandidates(nick string) []string {
	return []string{nick, nick + "_", nick + "_2", nick + "_3"}
}

// stanzaID is a random id for our presences.
func stanzaID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// roomInfo asks the room for its disco#info before joining: it tells a
// missing room from one that refuses us, without creating it, and gives the
// room's name and the features OMEMO depends on.
func roomInfo(ctx context.Context, s *xmpp.Session, room jid.JID) (mucroom.Info, mucadmin.RoomInfo, error) {
	// A room service that never answers must not hold the join forever.
	ctx, cancel := context.WithTimeout(ctx, IQTimeout)
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
		return mucroom.Info{}, mucadmin.RoomInfo{}, fmt.Errorf("%w: %s is a %s/%s", ErrNotARoom, room, info.Identity[0].Category, info.Identity[0].Type)
	}
	return mucroom.InfoFrom(info), mucadmin.RoomInfoFrom(info), nil
}

// JoinOptions are what a join asks of the room beyond the nick.
type JoinOptions struct {
	// Password is the room's password ("" for none); a wrong or missing
	// one ends in mucroom.ErrPassword.
	Password string
	// HistoryWithoutArchive, when above 0, asks a room whose disco#info
	// lists no message archive (XEP-0313) for up to that many messages of
	// its discussion history (§7.2.15) received since HistorySince (if
	// set). Rooms with an archive, and rooms when it is 0, are joined
	// without history.
	HistoryWithoutArchive int
	HistorySince          time.Time
}

// Join enters room on s as nick, or as a variant of it while the nick is
// taken, and waits until the room has sent its occupants (the presences
// reach ApplyPresence through the session's handler meanwhile). The room
// sends no discussion history.
func (rs *Rooms) Join(ctx context.Context, s *xmpp.Session, room jid.JID, nick string) (JoinResult, error) {
	return rs.JoinWith(ctx, s, room, nick, JoinOptions{})
}

// JoinPassword is Join with the room's password ("" for none); a wrong or
// missing one ends in mucroom.ErrPassword.
func (rs *Rooms) JoinPassword(ctx context.Context, s *xmpp.Session, room jid.JID, nick, password string) (JoinResult, error) {
	return rs.JoinWith(ctx, s, room, nick, JoinOptions{Password: password})
}

// JoinWith is Join with options.
func (rs *Rooms) JoinWith(ctx context.Context, s *xmpp.Session, room jid.JID, nick string, opts JoinOptions) (JoinResult, error) {
	room = room.Bare()
	log := zerolog.Ctx(ctx).With().Stringer("room", room).Logger()
	info, features, err := roomInfo(ctx, s, room)
	if err != nil {
		return JoinResult{}, err
	}
	join := mucroom.Join{MaxStanzas: 0, Password: opts.Password}
	if opts.HistoryWithoutArchive > 0 && !slices.Contains(features.Features, nsMAM) {
		// Without an archive the history is the only way to what was
		// said while we were away.
		join.MaxStanzas, join.Since = opts.HistoryWithoutArchive, opts.HistorySince
		log.Debug().Int("maxstanzas", join.MaxStanzas).Time("since", join.Since).Msg("Asking the room without an archive for its history")
	}
	candidates := NickCandidates(nick)
	for _, n := range candidates {
		occ, err := room.WithResource(n)
		if err != nil {
			return JoinResult{}, fmt.Errorf("%w: %q: %w", mucroom.ErrNickRejected, n, err)
		}
		answer := rs.StartJoin(room, n, info, features)
		join.Occupant, join.ID = occ, stanzaID()
		if err := s.Send(ctx, join.TokenReader()); err != nil {
			rs.Remove(room)
			return JoinResult{}, fmt.Errorf("failed to send join presence to %s: %w", room, err)
		}
		res, err := waitJoin(ctx, answer)
		if errors.Is(err, mucroom.ErrNickConflict) {
			log.Info().Str("nick", n).Msg("Nick taken in group chat, trying another")
			continue
		}
		if err != nil {
			rs.Remove(room)
			return JoinResult{}, err
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
	rs.Remove(room)
	return JoinResult{}, fmt.Errorf("%w: tried %s", mucroom.ErrNickConflict, strings.Join(candidates, ", "))
}

func waitJoin(ctx context.Context, answer <-chan JoinResult) (JoinResult, error) {
	t := time.NewTimer(JoinTimeout)
	defer t.Stop()
	select {
	case res := <-answer:
		return res, res.Err
	case <-t.C:
		return JoinResult{}, fmt.Errorf("the room did not answer the join in %v: %w", JoinTimeout, context.DeadlineExceeded)
	case <-ctx.Done():
		return JoinResult{}, ctx.Err()
	}
}

// Leave exits room (when s is not nil and we are in it) and forgets it.
func (rs *Rooms) Leave(ctx context.Context, s *xmpp.Session, room jid.JID) error {
	room = room.Bare()
	defer rs.Remove(room)
	nick, done := rs.StartLeave(room)
	if s == nil || done == nil {
		return nil
	}
	occ, err := room.WithResource(nick)
	if err != nil {
		return fmt.Errorf("failed to leave %s: %w", room, err)
	}
	if err := s.Send(ctx, mucroom.Leave(occ, stanzaID(), "")); err != nil {
		return fmt.Errorf("failed to send leave presence to %s: %w", room, err)
	}
	select {
	case <-done:
	case <-time.After(LeaveTimeout):
		zerolog.Ctx(ctx).Warn().Stringer("room", room).Msg("The room did not confirm that we left")
	case <-ctx.Done():
	}
	return nil
}

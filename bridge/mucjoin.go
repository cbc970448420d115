package bridge

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// SavedRoom is a room the login stays in across restarts, as stored in the
// login metadata; xmppclient.Room is the live state of a joined room.
type SavedRoom struct {
	JID string `json:"jid"`
	// Nick is the nick asked for; the room may have given us a variant.
	Nick string `json:"nick,omitempty"`
	// PasswordEnc is the room's password, sealed (mucpassword.go).
	PasswordEnc string `json:"password_enc,omitempty"`
	// LastArchiveID is the room's archive watermark (mucarchive.go): the
	// room's stanza-id up to which every message is stored on Matrix.
	LastArchiveID string `json:"last_archive_id,omitempty"`
	// JoinedAt is when the login first joined the room (Unix ms), the
	// earliest a rejoin asks a room without an archive for its history, and
	// where a room's archive catch-up starts while LastArchiveID is empty
	// (mucarchive.go).
	JoinedAt int64 `json:"joined_at,omitempty"`
}

// defaultNick is the nick when the user names none: the account's
// localpart.
func (c *Client) defaultNick() string {
	if l := c.account.Localpart(); l != "" {
		return l
	}
	return "matrix"
}

// joinRoom enters room as nick, or as a variant of it while the nick is
// taken, and waits until the room has sent its occupants
// (xmppclient.Rooms.Join). The portal is created or resynced from our own
// presence (chatinfo.go).
func (c *Client) joinRoom(ctx context.Context, room jid.JID, nick string, opts xmppclient.JoinOptions) (xmppclient.JoinResult, error) {
	s := c.currentSession()
	if s == nil {
		return xmppclient.JoinResult{}, xmppclient.ErrNotConnected
	}
	if opts.Password == "" {
		opts.Password = c.roomPassword(ctx, room)
	}
	return c.joinOnSession(ctx, s, room, nick, opts)
}

// joinOnSession is joinRoom on s with opts as they are. A room is joined
// once per session: a join that finds the room joined, after waiting for
// any other join of it in flight, answers with that join's nick. (The
// rejoin after a connect reads the saved rooms only after the bookmarks;
// a `join` command answered in between had saved the room, and joining it
// again made a second catch-up, from the first join's time, bring the
// messages sent just before that join beside its history.)
func (c *Client) joinOnSession(ctx context.Context, s *xmpp.Session, room jid.JID, nick string, opts xmppclient.JoinOptions) (xmppclient.JoinResult, error) {
	release, err := c.roomJoins.claim(ctx, room.Bare().String())
	if err != nil {
		return xmppclient.JoinResult{}, err
	}
	defer release()
	// Disconnected clears Joined with the session, so a joined room is
	// joined on this one.
	if r, ok := c.mucs.Get(room); ok && r.Joined {
		zerolog.Ctx(ctx).Debug().Stringer("room", room).Str("nick", r.Nick).Msg("Group chat already joined on this session")
		return xmppclient.JoinResult{Nick: r.Nick}, nil
	}
	// Live messages of the room wait until its archive has been caught
	// up on (mucarchive.go).
	done := c.startRoomCatchUp(room)
	res, err := c.mucs.JoinWith(ctx, s, room, nick, opts)
	if err != nil {
		done(nil, false, time.Time{})
		return res, err
	}
	r, _ := c.mucs.Get(room)
	done(s, slices.Contains(r.Features.Features, xmppclient.NSMAM), r.JoinStarted)
	return res, nil
}

// roomJoins keeps one join per room in flight (joinOnSession).
type roomJoins struct {
	mu       sync.Mutex
	inFlight map[string]chan struct{} // closed when that join is over
}

// claim waits until no other join of room is in flight, then makes this
// one the join in flight until release is called.
func (j *roomJoins) claim(ctx context.Context, room string) (release func(), err error) {
	for {
		j.mu.Lock()
		other, busy := j.inFlight[room]
		if !busy {
			done := make(chan struct{})
			if j.inFlight == nil {
				j.inFlight = map[string]chan struct{}{}
			}
			j.inFlight[room] = done
			j.mu.Unlock()
			return func() {
				j.mu.Lock()
				delete(j.inFlight, room)
				j.mu.Unlock()
				close(done)
			}, nil
		}
		j.mu.Unlock()
		select {
		case <-other:
		case <-ctx.Done():
			return nil, fmt.Errorf("failed to wait for the other join of %s: %w", room, ctx.Err())
		}
	}
}

// leaveRoom exits room (when connected) and forgets it, also in the login
// metadata, so that it is not rejoined; it stays marked as left until it
// is joined again (mucleft.go).
func (c *Client) leaveRoom(ctx context.Context, room jid.JID) error {
	room = room.Bare()
	if err := c.forgetRoom(ctx, room, time.Now()); err != nil {
		c.mucs.Remove(room)
		return err
	}
	return c.mucs.Leave(ctx, c.currentSession(), room)
}

// savedRooms are the rooms to be in, from the login metadata.
func (c *Client) savedRooms() []SavedRoom {
	c.metaMu.Lock()
	defer c.metaMu.Unlock()
	return slices.Clone(c.meta().Rooms)
}

// rememberRoom stores room in the login metadata so that it is rejoined
// after a reconnect or restart. The first time, it also records when the
// join began (now if the room is not being joined yet).
func (c *Client) rememberRoom(ctx context.Context, room jid.JID, nick string) error {
	joinedAt := time.Now()
	if r, ok := c.mucs.Get(room); ok && !r.JoinStarted.IsZero() {
		joinedAt = r.JoinStarted
	}
	return c.saveRoom(ctx, room, nick, joinedAt.UnixMilli())
}

// saveRoom is rememberRoom with the first join's time given (0: the room
// has not been joined yet; the rejoin that joins it records the time). A
// room saved is no longer marked as left.
func (c *Client) saveRoom(ctx context.Context, room jid.JID, nick string, joinedAt int64) error {
	c.metaMu.Lock()
	defer c.metaMu.Unlock()
	meta := c.meta()
	entry := SavedRoom{JID: room.Bare().String(), Nick: nick, JoinedAt: joinedAt}
	left := len(meta.Left)
	meta.Left = withoutLeft(meta.Left, entry.JID)
	i := slices.IndexFunc(meta.Rooms, func(r SavedRoom) bool { return r.JID == entry.JID })
	switch {
	case i < 0:
		meta.Rooms = append(meta.Rooms, entry)
	case meta.Rooms[i].Nick == entry.Nick && meta.Rooms[i].JoinedAt != 0 && len(meta.Left) == left:
		return nil
	default:
		meta.Rooms[i].Nick = entry.Nick
		if meta.Rooms[i].JoinedAt == 0 {
			meta.Rooms[i].JoinedAt = entry.JoinedAt
		}
	}
	if err := c.login.Save(ctx); err != nil {
		return fmt.Errorf("failed to save joined room %s: %w", room, err)
	}
	return nil
}

// forgetRoom removes room from the login metadata and marks it left at
// at, in one write: a Matrix invite accepted from then on finds the mark
// (acceptInvite). An invitation still kept for the room is dropped: it
// was answered by being in the room, and accepting its invite now would
// enter the room the user just left.
func (c *Client) forgetRoom(ctx context.Context, room jid.JID, at time.Time) error {
	c.metaMu.Lock()
	defer c.metaMu.Unlock()
	meta := c.meta()
	key := room.Bare().String()
	meta.Rooms = slices.DeleteFunc(meta.Rooms, func(r SavedRoom) bool { return r.JID == key })
	meta.Invites = slices.DeleteFunc(meta.Invites, func(s SavedInvite) bool { return s.Room == key && s.At.Before(at) })
	meta.Left = withLeft(meta.Left, key, at)
	if err := c.login.Save(ctx); err != nil {
		return fmt.Errorf("failed to forget room %s: %w", room, err)
	}
	return nil
}

// rejoinRooms enters the saved rooms again after (re)connecting. A room
// that refuses us gets a notice in its portal; it stays saved, so a
// passing problem does not lose it.
func (c *Client) rejoinRooms(ctx context.Context, s *xmpp.Session) {
	defer func() {
		if c.currentSession() == s {
			c.rejoining.Store(false)
		}
	}()
	// Rooms bookmarked with autojoin on other clients are joined with the
	// saved ones.
	c.syncBookmarks(ctx, s)
	holdBeforeRejoin(ctx)
	rooms := c.savedRooms()
	defer func() {
		zerolog.Ctx(ctx).Debug().Int("rooms", len(rooms)).Msg("Rejoin of the saved group chats over")
	}()
	for _, saved := range rooms {
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
		joinCtx, cancel := context.WithTimeout(ctx, 2*xmppclient.JoinTimeout)
		_, err = c.joinRoom(joinCtx, room, nick, c.rejoinHistory(joinCtx, saved))
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			zerolog.Ctx(ctx).Warn().Err(err).Stringer("room", room).Msg("Failed to rejoin group chat")
			c.queueRoomNotice(room, "Could not rejoin the group chat: "+joinErrorText(room, nick, err))
		case err == nil && saved.JoinedAt == 0:
			// A room not joined before (an autojoin bookmark saved by
			// syncBookmarks, or saved before JoinedAt existed): from now
			// on, what a crash before its first stored message would
			// miss is found.
			if err := c.rememberRoom(ctx, room, saved.Nick); err != nil {
				zerolog.Ctx(ctx).Err(err).Stringer("room", room).Msg("Failed to record when the room was joined")
			}
		}
	}
}

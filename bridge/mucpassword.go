package bridge

import (
	"context"
	"fmt"
	"slices"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// Password-protected rooms: the password given to `join` (or found in a
// bookmark) is kept sealed in the saved room, like the account password
// (credentials.go), and sent again on every rejoin.

// roomSealAD binds a sealed room password to the login and the room, so
// that a database writer without the key cannot move it to another room.
func roomSealAD(login, room string) string {
	return "muc\x00" + login + "\x00" + room
}

// roomPassword is the stored password of room, "" when there is none or it
// cannot be opened (the join then fails with the room's own answer).
func (c *Client) roomPassword(ctx context.Context, room jid.JID) string {
	key := room.Bare().String()
	var sealed string
	for _, r := range c.savedRooms() {
		if r.JID == key {
			sealed = r.PasswordEnc
		}
	}
	if sealed == "" {
		return ""
	}
	pw, err := c.main.Config.credentialKey.Open(sealed, roomSealAD(string(c.login.ID), key))
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Stringer("room", room).Msg("Cannot open the stored room password")
		return ""
	}
	return pw
}

// storeRoomPassword seals password into the saved room (which must be
// remembered already).
func (c *Client) storeRoomPassword(ctx context.Context, room jid.JID, password string) {
	if err := c.setRoomPassword(ctx, room, password); err != nil {
		zerolog.Ctx(ctx).Err(err).Stringer("room", room).Msg("Failed to store the room password")
	}
}

func (c *Client) setRoomPassword(ctx context.Context, room jid.JID, password string) error {
	key := room.Bare().String()
	sealed := ""
	if password != "" {
		var err error
		if sealed, err = c.main.Config.credentialKey.Seal(password, roomSealAD(string(c.login.ID), key)); err != nil {
			return fmt.Errorf("failed to seal the password of %s: %w", room, err)
		}
	}
	c.metaMu.Lock()
	defer c.metaMu.Unlock()
	meta := c.meta()
	i := slices.IndexFunc(meta.Rooms, func(r SavedRoom) bool { return r.JID == key })
	if i < 0 || meta.Rooms[i].PasswordEnc == sealed {
		return nil
	}
	meta.Rooms[i].PasswordEnc = sealed
	if err := c.login.Save(ctx); err != nil {
		return fmt.Errorf("failed to save the password of %s: %w", room, err)
	}
	return nil
}

// joinPassword is the password a join of room uses: the one given, else
// the stored one, else that of an unanswered invitation; keep is what to
// store for rejoins once the join succeeded ("" for nothing new).
func (c *Client) joinPassword(ctx context.Context, room jid.JID, given string) (use, keep string) {
	if given != "" {
		return given, given
	}
	if pw := c.roomPassword(ctx, room); pw != "" {
		return pw, ""
	}
	inv, _ := c.pendingInvite(ctx, room)
	return inv.Password, inv.Password
}

// joinRoomPassword is joinRoom with a password given now (not yet stored).
func (c *Client) joinRoomPassword(ctx context.Context, room jid.JID, nick, password string) (xmppclient.JoinResult, error) {
	s := c.currentSession()
	if s == nil {
		return xmppclient.JoinResult{}, xmppclient.ErrNotConnected
	}
	return c.joinOnSession(ctx, s, room, nick, xmppclient.JoinOptions{Password: password})
}

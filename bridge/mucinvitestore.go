package bridge

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/internal/credential"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucinvite"
)

// Unanswered invitations are kept in the login metadata (user_login), next
// to the saved rooms, so that the Matrix invite they became can still be
// answered after a restart: accepting joins with the invitation's
// password, rejecting declines a mediated one through the room.

// maxPendingInvites bounds the invitations kept per login: an inviter who
// is in the roster could otherwise grow the login row without end. The
// oldest go first; their Matrix invite then joins without the
// invitation's password and declines nothing.
const maxPendingInvites = 50

// SavedInvite is an invitation the Matrix user has not answered yet.
type SavedInvite struct {
	Room string `json:"room"`
	// Kind is "direct" (XEP-0249) or "mediated" (XEP-0045 §7.8.2).
	Kind   string `json:"kind"`
	From   string `json:"from,omitempty"`
	Reason string `json:"reason,omitempty"`
	// PasswordEnc is the room password the invitation carried, sealed as
	// a saved room's (mucpassword.go).
	PasswordEnc string    `json:"password_enc,omitempty"`
	At          time.Time `json:"at"`
}

// inviteSealAD binds a sealed invitation password to the login and the
// room; it differs from roomSealAD, so neither can be moved to the other.
func inviteSealAD(login, room string) string {
	return "mucinvite\x00" + login + "\x00" + room
}

// putInvite keeps inv until the user answers it, replacing an earlier
// invitation to the same room.
func (c *Client) putInvite(ctx context.Context, inv mucinvite.Invite, at time.Time) error {
	saved, err := sealInvite(c.main.Config.credentialKey, string(c.login.ID), inv, at)
	if err != nil {
		return err
	}
	c.metaMu.Lock()
	defer c.metaMu.Unlock()
	meta := c.meta()
	meta.Invites = keepInvite(meta.Invites, saved)
	if err := c.login.Save(ctx); err != nil {
		return fmt.Errorf("failed to save the invitation to %s: %w", saved.Room, err)
	}
	return nil
}

// sealInvite is inv as kept for login, its password sealed.
func sealInvite(key *credential.Key, login string, inv mucinvite.Invite, at time.Time) (SavedInvite, error) {
	room := inv.Room.Bare().String()
	saved := SavedInvite{Room: room, Kind: inv.Kind.String(), From: inv.From.String(), Reason: inv.Reason, At: at}
	if inv.Password != "" {
		sealed, err := key.Seal(inv.Password, inviteSealAD(login, room))
		if err != nil {
			return SavedInvite{}, fmt.Errorf("failed to seal the password of the invitation to %s: %w", room, err)
		}
		saved.PasswordEnc = sealed
	}
	return saved, nil
}

// keepInvite adds saved to kept, replacing an invitation to the same room
// and dropping the oldest beyond maxPendingInvites.
func keepInvite(kept []SavedInvite, saved SavedInvite) []SavedInvite {
	kept = slices.DeleteFunc(kept, func(s SavedInvite) bool { return s.Room == saved.Room })
	kept = append(kept, saved)
	if n := len(kept) - maxPendingInvites; n > 0 {
		kept = slices.Delete(kept, 0, n)
	}
	return kept
}

// pendingInvite is the unanswered invitation to room, if there is one.
func (c *Client) pendingInvite(ctx context.Context, room jid.JID) (mucinvite.Invite, bool) {
	key := room.Bare().String()
	c.metaMu.Lock()
	i := slices.IndexFunc(c.meta().Invites, func(s SavedInvite) bool { return s.Room == key })
	var saved SavedInvite
	if i >= 0 {
		saved = c.meta().Invites[i]
	}
	c.metaMu.Unlock()
	if i < 0 {
		return mucinvite.Invite{}, false
	}
	return c.openInvite(ctx, saved), true
}

// takeInvite removes the unanswered invitation to room and returns it.
func (c *Client) takeInvite(ctx context.Context, room jid.JID) (mucinvite.Invite, bool) {
	return c.takeInviteAnsweredBy(ctx, room, time.Time{})
}

// takeInviteAnsweredBy is takeInvite for a Matrix answer the homeserver
// stamped sentAt (zero: any time): an invitation that arrived after it is
// not what it answers and stays kept (inviteAnsweredBy).
func (c *Client) takeInviteAnsweredBy(ctx context.Context, room jid.JID, sentAt time.Time) (mucinvite.Invite, bool) {
	key := room.Bare().String()
	c.metaMu.Lock()
	meta := c.meta()
	i := slices.IndexFunc(meta.Invites, func(s SavedInvite) bool { return s.Room == key })
	if i >= 0 && !inviteAnsweredBy(meta.Invites[i], sentAt) {
		invited := meta.Invites[i].At
		c.metaMu.Unlock()
		zerolog.Ctx(ctx).Info().Str("room", key).Time("answer_sent", sentAt).Time("invited", invited).
			Msg("Keeping an invitation that arrived after the Matrix answer")
		return mucinvite.Invite{}, false
	}
	if i < 0 {
		c.metaMu.Unlock()
		return mucinvite.Invite{}, false
	}
	saved := meta.Invites[i]
	meta.Invites = slices.Delete(meta.Invites, i, i+1)
	err := c.login.Save(ctx)
	c.metaMu.Unlock()
	if err != nil {
		// Answered all the same; the invitation comes back after a
		// restart, where answering it again does no harm.
		zerolog.Ctx(ctx).Err(err).Str("room", key).Msg("Failed to forget an answered invitation")
	}
	return c.openInvite(ctx, saved), true
}

// openInvite turns a kept invitation back into what was received.
func (c *Client) openInvite(ctx context.Context, s SavedInvite) mucinvite.Invite {
	inv, err := openSavedInvite(c.main.Config.credentialKey, string(c.login.ID), s)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Str("room", s.Room).Msg("Cannot open the password of a kept invitation")
	}
	return inv
}

// openSavedInvite is the invitation s of login; a password that cannot be
// opened is left out, with the error (the join then fails with the room's
// own answer).
func openSavedInvite(key *credential.Key, login string, s SavedInvite) (mucinvite.Invite, error) {
	inv := mucinvite.Invite{Kind: mucinvite.Direct, Reason: s.Reason}
	if s.Kind == mucinvite.Mediated.String() {
		inv.Kind = mucinvite.Mediated
	}
	inv.Room, _ = jid.Parse(s.Room)
	inv.From, _ = jid.Parse(s.From)
	if s.PasswordEnc == "" {
		return inv, nil
	}
	pw, err := key.Open(s.PasswordEnc, inviteSealAD(login, s.Room))
	if err != nil {
		return inv, fmt.Errorf("failed to open the password of the invitation to %s: %w", s.Room, err)
	}
	inv.Password = pw
	return inv, nil
}

package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/puppet"
	"github.com/mxomemo/xmpp-bridge/xmpp/avatar"
	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
	"github.com/mxomemo/xmpp-bridge/xmpp/vcardphoto"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// avatarTimeout bounds one avatar lookup (metadata, data or vCard round trips).
const avatarTimeout = 30 * time.Second

// avatarState remembers which contacts' avatars this login has looked at,
// so that reconnects and repeated presences do not fetch them again.
type avatarState struct {
	// op serialises refreshes of the login: one contact at a time.
	op sync.Mutex

	mu sync.Mutex
	// seen maps a contact's bare JID to the avatar id last handled for it
	// ("" when it had none).
	seen map[string]string
	// bad maps a contact's bare JID to the id of an image that was refused
	// (hash mismatch, too large, undecodable), so that repeated
	// notifications of it are not downloaded again.
	bad map[string]string
	// pending and running: the lookup queue (avatarqueue.go).
	pending map[string]avatarRequest
	running bool
}

func (a *avatarState) refused(contact jid.JID, id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return id != "" && a.bad[contact.Bare().String()] == id
}

func (a *avatarState) refuse(contact jid.JID, id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.bad == nil {
		a.bad = map[string]string{}
	}
	a.bad[contact.Bare().String()] = id
}

func (a *avatarState) lookup(contact jid.JID) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	id, ok := a.seen[contact.Bare().String()]
	return id, ok
}

func (a *avatarState) note(contact jid.JID, id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seen == nil {
		a.seen = map[string]string{}
	}
	a.seen[contact.Bare().String()] = id
}

// noAvatar is what a contact without any avatar gets: a removal, which is a
// no-op for a ghost that never had one.
var noAvatar = &bridgev2.Avatar{Remove: true}

// contactAvatar looks up contact's avatar: XEP-0084 first, the vCard photo
// when the contact has no XEP-0084 metadata. current is the ghost's avatar
// id: when the contact's is the same, no image is downloaded. An error
// means the avatar could not be read; the ghost's should then stay.
func (c *Client) contactAvatar(ctx context.Context, s *xmpp.Session, contact jid.JID, current networkid.AvatarID) (*bridgev2.Avatar, error) {
	meta, ok, err := xmppclient.FetchAvatarMetadata(ctx, s, contact)
	if err != nil {
		return nil, err
	}
	if ok {
		return c.avatarFromMetadata(ctx, s, contact, meta, current)
	}
	// No XEP-0084 avatar, no node, or not allowed to see it: try the vCard.
	photo, err := xmppclient.FetchVCardPhoto(ctx, s, contact)
	if err != nil {
		return nil, err
	}
	if len(photo.Data) == 0 {
		return noAvatar, nil
	}
	data := photo.Data
	return &bridgev2.Avatar{
		ID:  networkid.AvatarID(photo.ID()),
		Get: func(context.Context) ([]byte, error) { return data, nil },
	}, nil
}

// avatarFromMetadata turns XEP-0084 metadata into a ghost avatar. A new
// image is downloaded and checked here rather than in Get, so that a bad
// one never replaces the ghost's current avatar.
func (c *Client) avatarFromMetadata(ctx context.Context, s *xmpp.Session, contact jid.JID, meta avatar.Metadata, current networkid.AvatarID) (*bridgev2.Avatar, error) {
	if len(meta.Infos) == 0 {
		return noAvatar, nil
	}
	info, ok := meta.InData()
	if !ok {
		return nil, fmt.Errorf("avatar of %s is only hosted on the web, not fetched", contact)
	}
	id := networkid.AvatarID(info.ID)
	get := func(ctx context.Context) ([]byte, error) {
		return xmppclient.FetchAvatarData(ctx, s, contact, info)
	}
	if id == current {
		// bridgev2 only calls Get if the earlier upload did not finish.
		return &bridgev2.Avatar{ID: id, Get: get}, nil
	}
	data, err := get(ctx)
	if err != nil {
		return nil, err
	}
	return &bridgev2.Avatar{ID: id, Get: func(context.Context) ([]byte, error) { return data, nil }}, nil
}

// avatarRequest says why an avatar is looked up.
type avatarRequest struct {
	// meta is the metadata of a PEP notification; nil to look it up.
	meta *avatar.Metadata
	// presenceHash is the XEP-0153 hash of a presence: when it is the
	// ghost's avatar id already, there is nothing to do.
	presenceHash *string
	// initial asks only for ghosts without an avatar, once per contact and
	// process (GetUserInfo, roster syncs).
	initial bool
}

// refreshAvatar looks up contact's avatar and applies it to the ghost
// unless it is already there. Lookups of a login run one at a time and
// re-read the ghost under the lock, so that a PEP push and a roster sync
// arriving together upload the image once. Failures are logged and leave
// the ghost as it was.
func (c *Client) refreshAvatar(ctx context.Context, contact jid.JID, req avatarRequest) {
	c.avatars.op.Lock()
	defer c.avatars.op.Unlock()
	s := c.currentSession()
	if s == nil {
		return
	}
	log := zerolog.Ctx(ctx).With().Stringer("contact", contact).Logger()
	ctx, cancel := context.WithTimeout(log.WithContext(ctx), avatarTimeout)
	defer cancel()
	ghost, err := c.main.Bridge.GetGhostByID(ctx, puppet.UserID(contact))
	if err != nil {
		log.Err(err).Msg("Failed to get ghost for avatar")
		return
	}
	if req.initial {
		if _, seen := c.avatars.lookup(contact); seen || ghost.AvatarID != "" {
			return
		}
	}
	if req.presenceHash != nil && *req.presenceHash == string(ghost.AvatarID) {
		return
	}
	var av *bridgev2.Avatar
	if req.meta != nil {
		if info, ok := req.meta.InData(); ok && c.avatars.refused(contact, info.ID) {
			return
		}
		av, err = c.avatarFromMetadata(ctx, s, contact, *req.meta, ghost.AvatarID)
	} else {
		av, err = c.contactAvatar(ctx, s, contact, ghost.AvatarID)
	}
	var badImage *xmppclient.BadImageError
	if errors.As(err, &badImage) {
		c.avatars.refuse(contact, badImage.ID)
	}
	if err != nil {
		log.Warn().Err(err).Msg("Failed to get contact's avatar, keeping the old one")
		if req.initial {
			c.avatars.note(contact, "")
		}
		return
	}
	c.avatars.note(contact, string(av.ID))
	if av.ID == ghost.AvatarID && ghost.AvatarSet && (av.Remove || ghost.AvatarMXC != "") {
		return
	}
	log.Debug().Str("avatar_id", string(av.ID)).Bool("remove", av.Remove).Msg("Updating ghost avatar")
	ghost.UpdateInfo(ctx, &bridgev2.UserInfo{Avatar: av})
}

// initialAvatar starts the first lookup of the avatar of a ghost that has
// none (GetUserInfo, roster syncs). It only starts it: GetUserInfo runs on
// bridgev2's event path, which must not wait for image downloads, and the
// ghost gets the avatar when the lookup ends. Changes after the first
// lookup arrive as PEP notifications and presence hashes, so connecting
// does not fetch every contact's avatar again.
func (c *Client) initialAvatar(ctx context.Context, ghost *bridgev2.Ghost, contact jid.JID) {
	if ghost == nil || ghost.AvatarID != "" || contact.Equal(c.account) || c.currentSession() == nil {
		return
	}
	if _, ok := c.avatars.lookup(contact); ok {
		return
	}
	c.queueAvatar(ctx, contact.Bare(), avatarRequest{initial: true})
}

// handleAvatarEvent takes XEP-0084 metadata notifications and reports
// whether st was one. The lookup runs on its own goroutine so that messages
// do not wait for image downloads.
func (c *Client) handleAvatarEvent(ctx context.Context, ev pubsub.Event) bool {
	meta, ok, err := xmppclient.AvatarNotification(ev)
	if !ok {
		return false
	}
	log := zerolog.Ctx(ctx)
	from := ev.From
	if from.Equal(jid.JID{}) || from.Bare().Equal(c.account) {
		return true // the user's own avatar is theirs to set in Matrix
	}
	if from.Resourcepart() != "" || from.Localpart() == "" || c.mucs.Known(from) || !c.avatarWanted(ctx, from) {
		log.Debug().Stringer("from", from).Msg("Ignoring avatar notification not from a contact")
		return true
	}
	if err != nil {
		log.Warn().Err(err).Stringer("from", from).Msg("Ignoring malformed avatar metadata")
		return true
	}
	// Without a payload (retraction, purge, id-only item) look it up.
	c.queueAvatar(ctx, from, avatarRequest{meta: meta})
	return true
}

// handleAvatarUpdate takes the XEP-0153 element of a contact's presence
// (read inside Serve, so the lookup goes to a goroutine): a hash not seen
// before for the contact triggers a refresh.
func (c *Client) handleAvatarUpdate(from jid.JID, u vcardphoto.Update) {
	if !u.Ready || from.Localpart() == "" || from.Bare().Equal(c.account) || c.mucs.Known(from.Bare()) {
		return
	}
	if seen, ok := c.avatars.lookup(from); ok && seen == u.Hash {
		return
	}
	ctx := c.login.Log.With().Str("component", "xmpp").Logger().WithContext(c.main.backgroundCtx())
	if !c.avatarWanted(ctx, from) {
		return
	}
	c.avatars.note(from, u.Hash)
	hash := u.Hash
	c.queueAvatar(ctx, from.Bare(), avatarRequest{presenceHash: &hash})
}

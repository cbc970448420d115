package bridge

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// roomReconfigured follows a configuration change of a room
// (xmppclient/roomconfig.go): the privacy status codes are already applied,
// the room's disco#info is read again in the background. An OMEMO portal
// is told when the room can no longer be encrypted for (its Matrix
// messages are then refused by groupTarget, never sent in plaintext), and
// when it can be again.
func (c *Client) roomReconfigured(ctx context.Context, cfg *xmppclient.ConfigChange) {
	if cfg == nil {
		return
	}
	c.noticeRoomOMEMOChange(ctx, cfg.Before, cfg.After)
	s := c.currentSession()
	if s == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	go func() {
		before, after, changed, err := c.mucs.RefreshFeatures(ctx, s, cfg)
		if err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Stringer("room", cfg.After.JID).Msg("Keeping the group chat's features from before its configuration change")
			return
		}
		if changed {
			c.noticeRoomOMEMOChange(ctx, before, after)
		}
	}()
}

// noticeRoomOMEMOChange tells an OMEMO portal that a change of its room
// made OMEMO impossible, or possible again.
func (c *Client) noticeRoomOMEMOChange(ctx context.Context, before, after xmppclient.Room) {
	text := roomOMEMOChangeText(groupOMEMOAllowed(before), groupOMEMOAllowed(after))
	if text == "" || c.main == nil {
		return
	}
	p, err := c.main.Bridge.GetExistingPortalByKey(ctx, c.mucKey(after.JID))
	if err != nil || p == nil {
		return
	}
	if meta, _ := p.Metadata.(*portal.Metadata); meta == nil || !meta.OMEMO {
		return
	}
	zerolog.Ctx(ctx).Info().Stringer("room", after.JID).Str("notice", text).Msg("Group chat configuration changed what OMEMO can do")
	c.noticeXMPPHop(ctx, p, text)
}

// roomOMEMOChangeText is the notice for an OMEMO portal whose room could
// (was) or can (now) be encrypted for; "" when nothing changed for OMEMO.
func roomOMEMOChangeText(was, now error) string {
	switch {
	case was == nil && now != nil:
		return "⚠️ XMPP: the group chat's configuration changed and OMEMO cannot be used in it any more: " + now.Error() +
			". Your messages are not sent (never as plaintext) until the room is non-anonymous and members-only again; " +
			"`omemo off` sends them unencrypted."
	case was != nil && now == nil:
		return "🔒 XMPP: the group chat is non-anonymous and members-only again; your messages go out OMEMO-encrypted again."
	}
	return ""
}

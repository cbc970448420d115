package bridge

import (
	"context"
	"fmt"
	"strings"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/event"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// A bridged 1:1 chat has two hops, and each is encrypted or not on its own: Matrix client ⇄
// bridge (Megolm, when the room is encrypted) and bridge ⇄ contact (OMEMO). The room's shield
// only shows the first; "omemo status" says both, and the room gets a notice when the second
// changes.

// matrixHopText says how the Matrix hop of a portal is protected.
func (c *Client) matrixHopText(ctx context.Context, p *bridgev2.Portal) string {
	mc, ok := c.main.Bridge.Matrix.(*matrix.Connector)
	if !ok || p == nil || p.MXID == "" {
		return "Matrix: unknown"
	}
	enc, err := mc.StateStore.IsEncrypted(ctx, p.MXID)
	switch {
	case err != nil:
		return "Matrix: unknown (" + err.Error() + ")"
	case enc:
		return "Matrix: encrypted to the bridge (Megolm; the bridge decrypts to forward over XMPP)"
	}
	return "Matrix: not encrypted (your homeserver can read this room)"
}

// xmppHopText says how the XMPP hop to contact is protected, counting the devices an OMEMO
// message would be encrypted for (the contact's trusted devices and the user's own other ones).
func (c *Client) xmppHopText(ctx context.Context, meta *portal.Metadata, contact jid.JID) string {
	switch {
	case meta.OMEMOOff:
		return "XMPP: not encrypted (OMEMO is off in this chat; the XMPP servers can read it)"
	case !meta.OMEMO:
		return "XMPP: not encrypted yet (no OMEMO in this chat so far; the XMPP servers can read it)"
	}
	theirs, err := c.listDevices(ctx, contact)
	if err != nil {
		return fmt.Sprintf("XMPP: OMEMO, but the devices of %s cannot be listed now (%v)", contact, err)
	}
	n := countTrusted(theirs)
	if n == 0 {
		return fmt.Sprintf("XMPP: OMEMO, but no device of %s is trusted: messages are not sent (see `omemo devices`)", contact)
	}
	text := fmt.Sprintf("XMPP: OMEMO to %d %s of %s", n, plural(n, "device", "devices"), contact)
	if own, err := c.listDevices(ctx, c.account); err == nil {
		if m := countTrusted(own); m > 0 {
			text += fmt.Sprintf(" and %d other %s of yours", m, plural(m, "device", "devices"))
		}
	}
	return text
}

func countTrusted(devs []xmppclient.DeviceInfo) int {
	n := 0
	for _, d := range devs {
		if d.Trusted && d.Err == nil {
			n++
		}
	}
	return n
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// groupXMPPHopText says how the XMPP hop of a group chat is protected.
func groupXMPPHopText(meta *portal.Metadata) string {
	switch {
	case meta.OMEMO:
		return "XMPP: OMEMO to the devices of the room's members (members-only, non-anonymous room)"
	case meta.OMEMOOff:
		return "XMPP: not encrypted (OMEMO is off in this group chat; the room's server can read it)"
	}
	return "XMPP: not encrypted (the room's server can read it)"
}

// hopsText is the two-line status of a 1:1 chat.
func (c *Client) hopsText(ctx context.Context, p *bridgev2.Portal, meta *portal.Metadata, contact jid.JID) string {
	return c.matrixHopText(ctx, p) + "\n" + c.xmppHopText(ctx, meta, contact)
}

// noticeXMPPHop tells the room that the XMPP hop's encryption changed.
func (c *Client) noticeXMPPHop(ctx context.Context, p *bridgev2.Portal, text string) {
	if p == nil || p.MXID == "" {
		return
	}
	_, err := c.main.Bridge.Bot.SendMessage(ctx, p.MXID, event.EventMessage, &event.Content{
		Parsed: &event.MessageEventContent{MsgType: event.MsgNotice, Body: text},
	}, nil)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to send the XMPP encryption notice")
	}
}

// omemoTurnedOnText is the notice when a contact's (or the user's other client's) OMEMO message
// makes the chat encrypted.
func omemoTurnedOnText(group bool) string {
	what := "chat"
	if group {
		what = "group chat"
	}
	return "🔒 XMPP: this " + what + " is OMEMO-encrypted from now on (an OMEMO message arrived); " +
		"your messages go out OMEMO-encrypted, never as plaintext. `omemo status` shows both hops."
}

// isGroupMeta reports whether the portal metadata is of a group chat.
func isGroupMeta(meta *portal.Metadata) bool { return meta.Kind == portal.MUC.String() }

// hopsTextOf is hopsText for a command's portal, "" when it has no 1:1 chat.
func hopsTextOf(ctx context.Context, c *Client, p *bridgev2.Portal, meta *portal.Metadata, contact jid.JID) string {
	if p == nil || meta == nil || contact.Equal(jid.JID{}) {
		return ""
	}
	return strings.TrimSpace(c.hopsText(ctx, p, meta, contact))
}

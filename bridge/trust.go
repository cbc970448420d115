package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// unencryptedPrefix marks a plaintext message in an encrypted chat.
const unencryptedPrefix = "[not encrypted] "

// untrustedPrefix marks a message from a device that is not trusted.
func untrustedPrefix(device uint32) string {
	return fmt.Sprintf("[from untrusted OMEMO device %d] ", device)
}

// decryptFailureNotice says who sent a message that could not be decrypted,
// from which device, and why.
func decryptFailureNotice(sender string, device uint32, fromMe bool, err error) string {
	who := sender
	if fromMe {
		who = "you (" + sender + ", from another client)"
	}
	dev := "an unknown device"
	if device != 0 {
		dev = fmt.Sprintf("device %d", device)
	}
	verb := "decrypt"
	var why string
	switch {
	case errors.Is(err, omemoxmpp.ErrUnreadableContent):
		// Decrypted: the sender wrote something; name what it was.
		verb, why = "show", "it was decrypted but holds no text the bridge understands"
		if i := strings.LastIndex(err.Error(), " ("); i >= 0 {
			why += err.Error()[i:]
		}
	case errors.Is(err, omemo.ErrNotForThisDevice):
		why = "it was not encrypted for the bridge's device; the sending client may not know it yet"
	case errors.Is(err, omemo.ErrBadMAC):
		why = "it failed authentication (corrupted, or encrypted with a session the bridge does not have)"
	case errors.Is(err, omemo.ErrNoSession), errors.Is(err, omemo.ErrUnknownPreKey):
		why = "the bridge has no OMEMO session with that device; a new session was offered, please resend"
	case errors.Is(err, omemo.ErrTooManySkipped):
		why = "too many messages from that device were lost before it"
	case errors.Is(err, xmppclient.ErrSCEMisaddressed):
		why = err.Error() + "; it is not shown here"
	case errors.Is(err, omemo.ErrEnvelope):
		why = "its encrypted envelope is invalid"
	case errors.Is(err, omemo.ErrMalformed), errors.Is(err, omemoxmpp.ErrMalformed):
		why = "it is malformed"
	case errors.Is(err, errOMEMOUnavailable):
		why = "OMEMO is not set up for this login yet"
	default:
		why = "of an internal error"
	}
	return fmt.Sprintf("Could not %s an OMEMO message from %s (%s): %s.", verb, who, dev, why)
}

// deviceChangeNotice describes how a contact's device set changed; "" when
// it did not. verifiedDevices says whether the contact has a verified
// device (then new devices are not trusted blindly).
func deviceChangeNotice(contact string, before, after map[uint32]bool, policy omemo.TrustPolicy, verifiedDevices bool) string {
	var added, removed []uint32
	for d := range after {
		if !before[d] {
			added = append(added, d)
		}
	}
	for d := range before {
		if !after[d] {
			removed = append(removed, d)
		}
	}
	if len(added) == 0 && len(removed) == 0 {
		return ""
	}
	slices.Sort(added)
	slices.Sort(removed)
	var b strings.Builder
	fmt.Fprintf(&b, "%s's OMEMO devices changed.", contact)
	if len(added) > 0 {
		fmt.Fprintf(&b, " New: %s", joinDevices(added))
		if policy == omemo.PolicyBTBV && !verifiedDevices {
			b.WriteString(" (trusted blindly until you verify a device).")
		} else {
			b.WriteString(" (not trusted until you trust or verify it).")
		}
	}
	if len(removed) > 0 {
		fmt.Fprintf(&b, " Removed: %s.", joinDevices(removed))
	}
	b.WriteString(" Use `omemo devices` here to see fingerprints.")
	return b.String()
}

func joinDevices(ds []uint32) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = fmt.Sprint(d)
	}
	return strings.Join(s, ", ")
}

// noticeDeviceChange posts a device change notice in the contact's portal,
// if there is one.
func (c *Client) noticeDeviceChange(ctx context.Context, contact jid.JID, before, after map[uint32]bool) {
	m, err := c.omemoManager(ctx)
	if err != nil {
		return
	}
	recs, _ := m.Devices(ctx, contact.Bare().String())
	verified := slices.ContainsFunc(recs, func(r omemo.TrustRecord) bool { return r.Level == omemo.TrustVerified })
	text := deviceChangeNotice(contact.Bare().String(), before, after, c.main.Config.OMEMO.Policy(), verified)
	if text == "" {
		return
	}
	p, err := c.main.Bridge.GetExistingPortalByKey(ctx, portal.DMKey(contact, c.login.ID))
	if err != nil || p == nil || p.MXID == "" {
		return
	}
	_, err = c.main.Bridge.Bot.SendMessage(ctx, p.MXID, event.EventMessage, &event.Content{
		Parsed: &event.MessageEventContent{MsgType: event.MsgNotice, Body: text},
	}, nil)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to send OMEMO device change notice")
	}
}

// listDevices returns the devices of owner (fetched fresh) with their
// identity keys (xmppclient.OMEMO.ListDevices).
func (c *Client) listDevices(ctx context.Context, owner jid.JID) ([]xmppclient.DeviceInfo, error) {
	return c.omemo.ListDevices(ctx, owner)
}

// setDeviceTrust sets the trust of one device of owner, its fingerprint
// checked when given (xmppclient.OMEMO.SetDeviceTrust).
func (c *Client) setDeviceTrust(ctx context.Context, owner jid.JID, device uint32, fingerprint string, level omemo.TrustLevel) (*xmppclient.DeviceInfo, error) {
	return c.omemo.SetDeviceTrust(ctx, owner, device, fingerprint, level)
}

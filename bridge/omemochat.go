package bridge

import (
	"context"
	"errors"
	"fmt"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// Whether a chat is encrypted lives in the portal metadata (OMEMO,
// OMEMOOff). It turns on when the contact, or the user's other client,
// sends an OMEMO message in it, or by the "omemo on" command; only "omemo
// off" turns it off, and after that incoming OMEMO does not turn it on
// again until "omemo on".

// markEncrypted records that OMEMO was used in the chat; it reports whether
// meta changed.
func markEncrypted(meta *portal.Metadata) bool {
	if meta.OMEMO || meta.OMEMOOff {
		return false
	}
	meta.OMEMO = true
	return true
}

// setEncrypted applies the omemo on/off command; it reports whether meta
// changed.
func setEncrypted(meta *portal.Metadata, on bool) bool {
	if meta.OMEMO == on && meta.OMEMOOff == !on {
		return false
	}
	meta.OMEMO, meta.OMEMOOff = on, !on
	return true
}

// chatEncrypted reports whether messages in p, the 1:1 chat with contact,
// must be encrypted: from the portal the caller holds, not read again.
func (c *Client) chatEncrypted(ctx context.Context, p *bridgev2.Portal, contact jid.JID) (bool, error) {
	if p == nil {
		return false, nil
	}
	meta, _ := p.Metadata.(*portal.Metadata)
	if meta == nil {
		return false, nil
	}
	if !meta.OMEMO && !meta.OMEMOOff && c.main.Config.OMEMO.byDefault() {
		return c.encryptByDefault(ctx, p, meta, contact)
	}
	return meta.OMEMO, nil
}

// encryptDM encrypts out for every trusted device of its contact and of
// the user (Send builds the stanza around it). It never falls back to
// plaintext: an error is a status shown in Matrix.
func (c *Client) encryptDM(ctx context.Context, out *xmppclient.Outgoing) (*omemoxmpp.Outgoing, error) {
	// Device lists fetched first (a contact's new device is learnt here
	// even without a presence subscription), the ratchet lock held for the
	// encryption alone.
	enc, err := c.omemo.EncryptChat(ctx, out.To, out.Body)
	if err == nil {
		c.countOMEMOSessions(ctx)
	}
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Stringer("to", out.To).Msg("Not sending message: OMEMO encryption failed")
		return nil, encryptionStatus(err)
	}
	if len(enc.Errors) > 0 {
		zerolog.Ctx(ctx).Debug().Int("skipped_devices", len(enc.Errors)).Msg("Some OMEMO devices were skipped")
	}
	return enc, nil
}

// encryptionStatus is the message status bridgev2 shows in Matrix for a
// message that could not be encrypted.
func encryptionStatus(err error) error {
	return bridgev2.WrapErrorInStatus(err).
		WithStatus(event.MessageStatusFail).
		WithErrorReason(event.MessageStatusGenericError).
		WithMessage(encryptionFailureText(err)).
		WithIsCertain(true).
		WithSendNotice(true)
}

// encryptionFailureText says why a message was not sent in an encrypted chat.
func encryptionFailureText(err error) string {
	const prefix = "Not sent: this chat is OMEMO-encrypted and "
	var devErr *omemoxmpp.DeviceError
	switch {
	case errors.Is(err, omemoxmpp.ErrNoDevices):
		return prefix + "the contact has no OMEMO device. Use `omemo off` in this room to send unencrypted messages."
	case errors.As(err, &devErr):
		return fmt.Sprintf(prefix+"none of the contact's %d OMEMO device(s) is trusted or reachable. "+
			"Check them with `omemo devices` and trust or verify one.", len(devErr.Devices))
	case errors.Is(err, omemoxmpp.ErrNoTrustedDevices):
		return prefix + "no trusted OMEMO device of the contact remains. Check them with `omemo devices`."
	case errors.Is(err, errOMEMOUnavailable):
		return prefix + "the bridge's OMEMO device is not ready (not connected yet?)."
	}
	return prefix + "encryption failed: " + err.Error()
}

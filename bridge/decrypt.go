package bridge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/metrics"
	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// omemoIncoming is what OMEMO says about an incoming message, for the
// Matrix side (see omemoConvert).
type omemoIncoming struct {
	Version omemo.Version
	Device  uint32
	Trusted bool
	// Failed is set when in.Body is a notice about a message that could
	// not be decrypted.
	Failed bool
}

// omemoJob is an incoming <encrypted/> message to decrypt, as the 1:1 and
// the group chat paths both describe it.
type omemoJob struct {
	// Encrypted is the message's <encrypted/> element(s), or why there
	// are none (omemoxmpp.ErrNotEncrypted: a plaintext message).
	Encrypted func() (*omemoxmpp.Received, error)
	// Sender is the sender's real bare JID: the contact, our own account,
	// or a room occupant's real JID.
	Sender jid.JID
	FromMe bool
	// Peer is the chat: the contact's bare JID, or the room's.
	Peer jid.JID
	// Room is set for group chats (then Sender is kept in the inbox).
	Room      bool
	MessageID string
	XMPPID    string
	Replace   string
	Timestamp time.Time
	// Fallback is set for reactions and retractions: their body is only a
	// fallback for old clients, never kept as text nor queued as a chat
	// message again.
	Fallback bool
	// Mark is the portal of a message that queueMessage will queue if it
	// has text (no correction, reaction or retraction): its sending mark
	// is written with the inbox row (sendingmarks.go); "" for none.
	Mark networkid.PortalID
}

// omemoResult is what decryption gives for a message: its plaintext, or a
// notice (Info.Failed), or nothing to show (Body "").
type omemoResult struct {
	Body    string
	Replace string
	Info    *omemoIncoming
}

// applyOMEMO puts a decryption result into in; nil leaves in unchanged.
func (in *incoming) applyOMEMO(r *omemoResult) {
	if r == nil {
		return
	}
	in.Body, in.Replace, in.OMEMO = r.Body, r.Replace, r.Info
}

// errNothingToShow: a group chat OMEMO message without text (a key
// transport or heartbeat) or one the inbox has no plaintext for.
var errNothingToShow = errors.New("OMEMO message without text")

// decryptIncoming is the decryption step of every incoming message, 1:1
// or group chat: it replaces the fallback body of an OMEMO message with its
// plaintext (or with a notice saying why there is none). Messages without
// <encrypted/> pass unchanged. It returns an error only for messages that
// must not be bridged at all (replays; in rooms also those with nothing to
// show).
func (c *Client) decryptIncoming(ctx context.Context, in *incoming) error {
	if in.private() {
		markPrivateEncrypted(in)
		return nil
	}
	if in.Room != nil && (!in.Room.Encrypted || isOwnReflection(in)) {
		// Our own reflections were never encrypted for our own device.
		return nil
	}
	_, senderJID := c.sender(in)
	job := omemoJob{
		Encrypted: in.Message.OMEMO, Sender: senderJID, FromMe: in.FromMe, Peer: in.Peer,
		MessageID: string(c.messageID(in)),
		XMPPID:    in.XMPPID, Timestamp: in.Timestamp,
		Fallback: in.Reactions != nil || in.Retract != "",
	}
	if !job.Fallback && in.Replace == "" {
		job.Mark = c.portalKey(in).ID
	}
	if in.Room == nil {
		job.Replace = in.Replace
	} else {
		if !in.Room.ShowsJIDs || senderJID.Equal(jid.JID{}) {
			in.Body = in.Room.Nick + " " + hiddenJIDNotice
			in.OMEMO = &omemoIncoming{Failed: true}
			c.main.Metrics.MessageBridged(metrics.XMPPToMatrix, metrics.OutcomeUndecryptable)
			return nil
		}
		job.Room, job.Sender, job.FromMe = true, senderJID.Bare(), in.Sender.IsFromMe
		job.XMPPID = cmp.Or(in.StanzaID, in.OriginID)
	}
	r, err := c.decryptOMEMO(ctx, job)
	if err != nil {
		return err
	}
	if in.Room == nil {
		in.applyOMEMO(r)
		return nil
	}
	if job.Fallback {
		// The reference is outside the encryption; the body was a fallback.
		in.Body, in.OMEMO = "", nil
		return nil
	}
	if r == nil || r.Body == "" {
		return errNothingToShow
	}
	in.Body, in.OMEMO = r.Body, r.Info
	return nil
}

// decryptOMEMO decrypts job in one transaction with its inbox row (see
// above), or answers it from the inbox. It returns nil for messages without
// <encrypted/>, and an error only for messages that must not be bridged at
// all (replays). It never returns the fallback body.
func (c *Client) decryptOMEMO(ctx context.Context, job omemoJob) (*omemoResult, error) {
	rcv, err := job.Encrypted()
	if errors.Is(err, omemoxmpp.ErrNotEncrypted) {
		return nil, nil
	}
	if err != nil {
		return c.failedOMEMO(job, 0, err), nil
	}
	if job.FromMe {
		// Our own messages sent from Matrix come back from the archive;
		// they were never encrypted for our own device.
		if msg, err := c.main.Bridge.DB.Message.GetFirstPartByID(ctx, c.login.ID, networkid.MessageID(job.MessageID)); err == nil && msg != nil {
			return &omemoResult{}, nil
		}
	}
	var entry *inboxEntry
	marks := c.main.sendingMarksOf(c.login.ID)
	marked := false
	req := xmppclient.DecryptRequest{Received: rcv, Sender: job.Sender, Peer: job.Peer, Room: job.Room, FromMe: job.FromMe}
	// The client holds the ratchet lock over our transaction, which keeps
	// the step's result in the inbox; what the result asks of the network
	// (a reset, a republish, a heartbeat) the client queues afterwards.
	// The store's transaction lets its cache serve the sender's trust (and
	// device list) inside it (omemostore/cache.go).
	d, err := c.omemo.Decrypt(ctx, req, func(ctx context.Context, step xmppclient.DecryptStep) error {
		// The mirror is read before the transaction (markInTxn).
		if job.Mark != "" {
			if err := marks.ensureLoaded(ctx); err != nil {
				// queueMessage marks it in a group commit instead.
				zerolog.Ctx(ctx).Warn().Err(err).Msg("Not marking a message with its inbox row")
				job.Mark = ""
			}
		}
		return c.omemoStore().DoTxn(ctx, func(ctx context.Context) error {
			var err error
			if entry, err = c.inboxGet(ctx, job.MessageID); err != nil || entry != nil {
				return err
			}
			start := time.Now()
			res := step(ctx)
			c.main.Metrics.ObserveDecrypt(time.Since(start))
			if res.Message == nil {
				// The engine left its state unchanged: nothing to record.
				return nil
			}
			entry = newInboxEntry(job, res)
			if err := c.inboxPut(ctx, entry); err != nil {
				return err
			}
			// A message with text (a notice too) is queued for bridgev2
			// as a new message; its mark commits with its row.
			if job.Mark != "" && entry.Kind != inboxEmpty && entry.Body != "" {
				if err := marks.markInTxn(ctx, networkid.MessageID(job.MessageID), job.Mark); err != nil {
					return err
				}
				marked = true
			}
			return nil
		})
	})
	switch d.Outcome {
	case xmppclient.DecryptNotForUs:
		return &omemoResult{}, nil
	case xmppclient.DecryptUnavailable:
		return c.failedOMEMO(job, d.Device, errOMEMOUnavailable), nil
	}
	// The fields are added per event, not as a context per message: most
	// messages log nothing here.
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Str("xmpp_id", job.XMPPID).Uint32("omemo_device", d.Device).Msg("Failed to decrypt OMEMO message")
		return c.failedOMEMO(job, d.Device, err), nil
	}
	if marked {
		marks.committedFresh(networkid.MessageID(job.MessageID))
	}
	if entry == nil {
		if errors.Is(d.Err, omemo.ErrDuplicate) {
			return nil, fmt.Errorf("replayed OMEMO message: %w", d.Err)
		}
		zerolog.Ctx(ctx).Warn().Err(d.Err).Str("xmpp_id", job.XMPPID).Uint32("omemo_device", d.Device).Msg("Failed to decrypt OMEMO message")
		return c.failedOMEMO(job, d.Device, d.Err), nil
	}
	r := inboxResult(entry)
	if r.Info.Failed {
		c.main.Metrics.MessageBridged(metrics.XMPPToMatrix, metrics.OutcomeUndecryptable)
	}
	c.maybeSweep(ctx)
	if d.Message != nil {
		c.countOMEMOSessions(ctx)
	}
	return r, nil
}

// newInboxEntry is the inbox row of a ratchet step that moved the engine's
// state: the plaintext, a notice saying why there is none, or nothing to
// show (a key transport, a heartbeat, the fallback of a reaction).
func newInboxEntry(job omemoJob, res xmppclient.Decrypted) *inboxEntry {
	msg := res.Message
	entry := &inboxEntry{
		MessageID: job.MessageID, Peer: job.Peer.Bare().String(), FromMe: job.FromMe,
		XMPPID: job.XMPPID, Replace: job.Replace, Version: msg.Version, Device: msg.Sender.Device,
		Trusted: msg.Trusted, Timestamp: job.Timestamp,
	}
	if job.Room {
		entry.Sender = job.Sender.Bare().String()
	}
	if entry.Timestamp.IsZero() {
		entry.Timestamp = time.Now()
	}
	switch {
	case job.Fallback:
		entry.Kind = inboxEmpty
	case res.Err != nil:
		entry.Kind, entry.Body = inboxFailed, decryptFailureNotice(job.Sender.String(), msg.Sender.Device, job.FromMe, res.Err)
	case msg.Empty || msg.Body == "":
		entry.Kind = inboxEmpty
	default:
		entry.Kind, entry.Body = inboxText, msg.Body
	}
	return entry
}

// errOMEMOUnavailable: the login's device could not be set up.
var errOMEMOUnavailable = xmppclient.ErrOMEMOUnavailable

// failIncoming turns in into a notice about a message that could not be
// decrypted.
func (c *Client) failIncoming(in *incoming, sender jid.JID, device uint32, err error) {
	in.applyOMEMO(c.failedOMEMO(omemoJob{Sender: sender, FromMe: in.FromMe}, device, err))
}

// failedOMEMO is the notice about a message that could not be decrypted.
func (c *Client) failedOMEMO(job omemoJob, device uint32, err error) *omemoResult {
	c.main.Metrics.MessageBridged(metrics.XMPPToMatrix, metrics.OutcomeUndecryptable)
	return &omemoResult{
		Body: decryptFailureNotice(job.Sender.String(), device, job.FromMe, err),
		Info: &omemoIncoming{Device: device, Failed: true},
	}
}

// omemoConvert adjusts the Matrix message of an incoming message to what
// OMEMO said about it, inside the portal's event loop: the chat becomes
// encrypted when the contact (or the user's other client) uses OMEMO;
// failures are notices; messages from untrusted devices are marked, as are
// plaintext messages in an encrypted chat.
func (c *Client) omemoConvert(ctx context.Context, p *bridgev2.Portal, in *incoming, content *event.MessageEventContent) {
	mayEncrypt := true
	if in.Room != nil {
		room, _ := c.mucs.GetFor(in.Peer, "")
		mayEncrypt = groupOMEMOAllowed(room) == nil
	}
	c.convertOMEMO(ctx, p, in.OMEMO, content, mayEncrypt)
}

// convertOMEMO is omemoConvert for what OMEMO said about a message (nil:
// plaintext). mayEncrypt is false in group chats that cannot be encrypted:
// there an OMEMO message does not mark the portal.
func (c *Client) convertOMEMO(ctx context.Context, p *bridgev2.Portal, info *omemoIncoming, content *event.MessageEventContent, mayEncrypt bool) {
	meta, _ := p.Metadata.(*portal.Metadata)
	if info == nil {
		if meta != nil && meta.OMEMO {
			content.Body = unencryptedPrefix + content.Body
		}
		return
	}
	// Decryptable or not, the contact writes OMEMO: so does the bridge.
	if mayEncrypt && meta != nil && markEncrypted(meta) {
		if err := p.Save(ctx); err != nil {
			zerolog.Ctx(ctx).Err(err).Msg("Failed to save portal after enabling OMEMO")
		}
		c.noticeXMPPHop(ctx, p, omemoTurnedOnText(isGroupMeta(meta)))
	}
	if info.Failed {
		content.MsgType = event.MsgNotice
		return
	}
	if !info.Trusted {
		content.Body = untrustedPrefix(info.Device) + content.Body
	}
}

package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/random"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/metrics"
	"github.com/mxomemo/xmpp-bridge/msgconv"
	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/puppet"
	"github.com/mxomemo/xmpp-bridge/xmpp/chatstates"
	"github.com/mxomemo/xmpp-bridge/xmpp/reply"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

var (
	_ bridgev2.EditHandlingNetworkAPI        = (*Client)(nil)
	_ bridgev2.ReadReceiptHandlingNetworkAPI = (*Client)(nil)
	_ bridgev2.TypingHandlingNetworkAPI      = (*Client)(nil)
	_ bridgev2.RedactionHandlingNetworkAPI   = (*Client)(nil)
)

// HandleMatrixMessage implements bridgev2.NetworkAPI: the Matrix -> XMPP
// path for messages (text, notices, emotes, files) to 1:1 chats, rooms and
// private chats with occupants; every one with a body leaves through Send.
func (c *Client) HandleMatrixMessage(ctx context.Context, msg *bridgev2.MatrixMessage) (*bridgev2.MatrixMessageResponse, error) {
	c.touchOwnPresence()
	chat, err := portal.Parse(msg.Portal.PortalKey)
	if err != nil {
		return nil, err
	}
	if err := c.awaitReady(ctx); err != nil {
		return nil, err
	}
	if chat.Kind == portal.PM {
		return c.handleMatrixPrivate(ctx, msg, chat.JID)
	}
	switch msg.Content.MsgType {
	case event.MsgText, event.MsgNotice, event.MsgEmote:
	case event.MsgImage, event.MsgVideo, event.MsgAudio, event.MsgFile:
		if chat.Kind == portal.DM {
			return c.handleMatrixMedia(ctx, msg, chat.JID)
		}
	default:
		return nil, bridgev2.ErrUnsupportedMessageType
	}
	if chat.Kind == portal.MUC {
		return c.handleMatrixGroupchat(ctx, msg, chat.JID)
	}
	out := &xmppclient.Outgoing{
		To:   chat.JID,
		ID:   matrixMessageID(msg.Event),
		Body: msgconv.BodyFromMatrix(ctx, msg.Content),
	}
	if msg.ReplyTo != nil {
		if target, err := portal.ParseMessageID(msg.ReplyTo.ID); err == nil {
			author, _ := jid.Parse(target.Sender)
			out.ReplyTo = &reply.Reply{To: author, ID: target.ID}
		}
	}
	already, err := c.main.intake.sendOnce(ctx, eventID(msg.Event), out.ID, func() error {
		return c.Send(ctx, dmTarget(msg.Portal), out)
	}, c.archivedCheck(ctx, out))
	if err != nil {
		c.main.Metrics.MessageBridged(metrics.MatrixToXMPP, metrics.OutcomeFailedSend)
		return nil, err
	}
	if !already {
		c.main.Metrics.MessageBridged(metrics.MatrixToXMPP, metrics.OutcomeOK)
	}
	return &bridgev2.MatrixMessageResponse{
		DB: &database.Message{
			ID:        portal.MakeMessageID(chat.JID, c.account, out.ID),
			SenderID:  puppet.UserID(c.account),
			Timestamp: time.Now(),
			Metadata:  &portal.MessageMetadata{OriginID: out.ID},
		},
	}, nil
}

// sendSignal sends a bodyless message (chat state, marker, reactions,
// retraction): these carry no content, so they bypass Send and its
// encryption.
func (c *Client) sendSignal(ctx context.Context, sig xmppclient.Signal) error {
	s := c.currentSession()
	if s == nil {
		return xmppclient.ErrNotConnected
	}
	return xmppclient.SendSignal(ctx, s, sig)
}

// HandleMatrixEdit implements bridgev2.EditHandlingNetworkAPI with a
// XEP-0308 correction of our own message.
func (c *Client) HandleMatrixEdit(ctx context.Context, msg *bridgev2.MatrixEdit) error {
	c.touchOwnPresence()
	chat, err := portal.Parse(msg.Portal.PortalKey)
	if err != nil {
		return err
	}
	if err := refuseFileEdit(msg.Content); err != nil {
		return err
	}
	if err := c.awaitReady(ctx); err != nil {
		return err
	}
	target, err := portal.ParseMessageID(msg.EditTarget.ID)
	if err != nil {
		return err
	}
	if chat.Kind == portal.PM {
		return c.sendPrivateCorrection(ctx, msg, chat.JID, target)
	}
	if chat.Kind == portal.MUC {
		return c.sendGroupCorrection(ctx, msg, chat.JID)
	}
	if target.Sender != c.account.String() {
		return refusal(errors.New("only your own messages can be corrected on XMPP"))
	}
	out := &xmppclient.Outgoing{
		To:      chat.JID,
		ID:      matrixMessageID(msg.Event),
		Body:    msgconv.BodyFromMatrix(ctx, msg.Content),
		Replace: target.ID,
	}
	if _, err := c.main.intake.sendOnce(ctx, eventID(msg.Event), out.ID, func() error {
		return c.Send(ctx, dmTarget(msg.Portal), out)
	}, c.archivedCheck(ctx, out)); err != nil {
		return err
	}
	// bridgev2 saves EditTarget after this returns.
	if meta, ok := msg.EditTarget.Metadata.(*portal.MessageMetadata); ok {
		meta.CorrectionIDs = append(meta.CorrectionIDs, out.ID)
	}
	return nil
}

// HandleMatrixMessageRemove implements bridgev2.RedactionHandlingNetworkAPI
// with a XEP-0424 retraction of our own message.
func (c *Client) HandleMatrixMessageRemove(ctx context.Context, msg *bridgev2.MatrixMessageRemove) error {
	chat, err := portal.Parse(msg.Portal.PortalKey)
	if err != nil {
		return err
	}
	if chat.Kind == portal.PM {
		return refusal(errPMUnsupported)
	}
	if err := c.awaitReady(ctx); err != nil {
		return err
	}
	target, err := portal.ParseMessageID(msg.TargetMessage.ID)
	if err != nil {
		return err
	}
	if chat.Kind == portal.MUC {
		return c.sendGroupRetraction(ctx, chat.JID, msg.TargetMessage)
	}
	if target.Sender != c.account.String() {
		return refusal(errors.New("only your own messages can be retracted on XMPP"))
	}
	sig := xmppclient.Signal{To: chat.JID, ID: matrixMessageID(msg.Event), Retract: target.ID}
	_, err = c.main.intake.sendOnce(ctx, eventID(msg.Event), sig.ID, func() error {
		return c.withSession(ctx, func(s *xmpp.Session) error {
			err := xmppclient.SendSignal(ctx, s, sig)
			if errors.Is(err, xmppclient.ErrSend) {
				return fmt.Errorf("%w: failed to send retraction: %w", errSessionLost, err)
			}
			return err
		})
	}, nil) // retractions carry no body: servers do not archive them
	return err
}

// HandleMatrixReadReceipt implements bridgev2.ReadReceiptHandlingNetworkAPI
// with a XEP-0333 displayed marker, sent only for messages that asked for
// markers.
func (c *Client) HandleMatrixReadReceipt(ctx context.Context, msg *bridgev2.MatrixReadReceipt) error {
	c.touchOwnPresence()
	if msg.ExactMessage == nil {
		return nil
	}
	meta, ok := msg.ExactMessage.Metadata.(*portal.MessageMetadata)
	if !ok || !meta.Markable {
		return nil
	}
	chat, err := portal.Parse(msg.Portal.PortalKey)
	if err != nil {
		return err
	}
	if chat.Kind == portal.MUC {
		return c.sendGroupMarker(ctx, chat.JID, msg)
	}
	if chat.Kind != portal.DM {
		return nil
	}
	target, err := portal.ParseMessageID(msg.ExactMessage.ID)
	if err != nil || target.Sender != chat.JID.String() {
		return err
	}
	return c.sendSignal(ctx, xmppclient.Signal{To: chat.JID, ID: random.String(24), Displayed: target.ID})
}

// HandleMatrixTyping implements bridgev2.TypingHandlingNetworkAPI with
// XEP-0085 chat states.
func (c *Client) HandleMatrixTyping(ctx context.Context, msg *bridgev2.MatrixTyping) error {
	c.touchOwnPresence()
	chat, err := portal.Parse(msg.Portal.PortalKey)
	if err != nil {
		return err
	}
	if chat.Kind == portal.MUC {
		return c.sendGroupTyping(ctx, chat.JID, msg.IsTyping)
	}
	if chat.Kind != portal.DM {
		return nil
	}
	state := chatstates.Paused
	if msg.IsTyping {
		state = chatstates.Composing
	}
	return c.sendSignal(ctx, xmppclient.Signal{To: chat.JID, ID: random.String(24), ChatState: state})
}

// bridgeIDPrefix marks the ids of the messages the bridge sends for Matrix messages. Those are in
// Matrix already, so when one comes back from the archive (a restart cut bridgev2 off between
// sending it and storing it) it is not bridged a second time.
const bridgeIDPrefix = "mxb-"

func newMessageID() string { return bridgeIDPrefix + random.String(20) }

// matrixMessageID is the XMPP id of the stanza sent for a Matrix event:
// derived from the event ID (intakeXMPPID) so that a stanza sent again
// after a crash is recognisably the same message; random for the rare
// caller without an event.
func matrixMessageID(evt *event.Event) string {
	if evt == nil || evt.ID == "" {
		return newMessageID()
	}
	return intakeXMPPID(evt.ID)
}

func eventID(evt *event.Event) id.EventID {
	if evt == nil {
		return ""
	}
	return evt.ID
}

// Errors of the Matrix → group chat path, shown as message statuses.
var (
	errGroupOMEMO = errors.New("this group chat is marked OMEMO-encrypted, but OMEMO cannot be used in it")
	errNotInRoom  = errors.New("the bridge is not in this group chat right now (reconnecting, or you left it); use `join` to enter it again")
)

// handleMatrixGroupchat sends a Matrix message to the room as a
// type=groupchat message with our origin-id, OMEMO-encrypted when the
// portal is. The room reflects it to us with its stanza-id; bridgev2
// matches the reflection to this message by the origin-id (the transaction
// ID) instead of bridging it back. Files go through the account's upload
// service like in 1:1 chats: a link and OOB in plaintext rooms, an aesgcm
// link inside the OMEMO body in encrypted ones.
func (c *Client) handleMatrixGroupchat(ctx context.Context, msg *bridgev2.MatrixMessage, room jid.JID) (*bridgev2.MatrixMessageResponse, error) {
	c.awaitRoomJoined(ctx, room)
	r, encrypted, err := c.groupTarget(msg.Portal, room)
	if err != nil {
		return nil, err
	}
	s := c.currentSession()
	if s == nil {
		return nil, xmppclient.ErrNotConnected
	}
	out := &xmppclient.Outgoing{To: room.Bare(), Room: true, ID: matrixMessageID(msg.Event)}
	caption := ""
	if isMediaMessage(msg.Content.MsgType) {
		if err := c.uploadMatrixMedia(ctx, s, msg.Content, encrypted, out); err != nil {
			return nil, err
		}
		caption = msgconv.Caption(msg.Content)
	} else {
		out.Body = msgconv.BodyFromMatrix(ctx, msg.Content)
	}
	if msg.ReplyTo != nil {
		out.ReplyTo = groupReply(r, msg.ReplyTo, c.account)
	}
	target := sendTarget{portal: msg.Portal, room: &r, session: s, encrypted: encrypted}
	txn := networkid.TransactionID(out.ID)
	db := &database.Message{
		SenderID:  puppet.UserID(c.account),
		Timestamp: time.Now(),
		Metadata:  &portal.MessageMetadata{OriginID: out.ID},
	}
	msg.AddPendingToSave(db, txn, groupchatEcho)
	// The intake's sent record (intake.go): a replayed event that was sent
	// before a crash is not sent again; one cut between the send and the
	// record is looked for in the room's archive first. Its reflection
	// (live, or from the room's catch-up) completes the pending message.
	already, err := c.main.intake.sendOnce(ctx, eventID(msg.Event), out.ID, func() error {
		return c.Send(ctx, target, out)
	}, func(since time.Time) (bool, error) { return c.inArchive(ctx, room, true, out.ID, since) })
	if err != nil {
		msg.RemovePending(txn)
		c.main.Metrics.MessageBridged(metrics.MatrixToXMPP, metrics.OutcomeFailedSend)
		return nil, err
	}
	if already {
		return &bridgev2.MatrixMessageResponse{DB: db, Pending: true}, nil
	}
	c.main.Metrics.MessageBridged(metrics.MatrixToXMPP, metrics.OutcomeOK)
	if caption != "" {
		// A second message; its reflection is ours and not bridged back.
		capOut := &xmppclient.Outgoing{To: room.Bare(), Room: true, ID: newMessageID(), Body: caption}
		if err := c.Send(ctx, target, capOut); err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to send the caption of a file")
		}
	}
	return &bridgev2.MatrixMessageResponse{DB: db, Pending: true}, nil
}

// isMediaMessage reports whether a Matrix message type is a file.
func isMediaMessage(t event.MessageType) bool {
	switch t {
	case event.MsgImage, event.MsgVideo, event.MsgAudio, event.MsgFile:
		return true
	}
	return false
}

// awaitRoomJoined lets a Matrix event for a saved room wait while the room
// is being joined again: after a (re)connect the saved rooms are rejoined in
// the background once the session is ready, and the homeserver's flushed
// queue would otherwise fail (and lose) them with errNotInRoom. The wait is
// bounded by network.send_wait, and ends when the rejoin is over; a room
// the user left is not waited for.
func (c *Client) awaitRoomJoined(ctx context.Context, room jid.JID) {
	if c.login == nil || c.main == nil || !c.isSavedRoom(room) {
		return
	}
	deadline := time.Now().Add(c.main.Config.sendWait())
	logged := false
	for time.Now().Before(deadline) {
		if r, ok := c.mucs.Get(room); ok && r.Joined {
			return
		}
		if ready, _ := c.ready.state(); ready && !c.rejoining.Load() {
			// The rejoin is over and did not get us in (kicked, banned,
			// refused): the caller's notice says so now.
			return
		}
		if !logged {
			zerolog.Ctx(ctx).Debug().Stringer("room", room).Msg("Waiting for the group chat to be joined again before sending")
			logged = true
		}
		if !xmppclient.Sleep(ctx, 250*time.Millisecond) {
			return
		}
	}
}

// isSavedRoom reports whether room is one the login stays in.
func (c *Client) isSavedRoom(room jid.JID) bool {
	key := room.Bare().String()
	return slices.ContainsFunc(c.savedRooms(), func(r SavedRoom) bool { return r.JID == key })
}

// groupTarget is the room a Matrix event goes to and whether it must be
// OMEMO-encrypted; an error when we are not in it or the portal is
// encrypted but the room cannot be (never plaintext then).
func (c *Client) groupTarget(p *bridgev2.Portal, room jid.JID) (xmppclient.Room, bool, error) {
	r, ok := c.mucs.Get(room)
	if !ok || !r.Joined {
		return r, false, groupSendStatus(errNotInRoom)
	}
	if meta, _ := p.Metadata.(*portal.Metadata); meta != nil && meta.OMEMO {
		if err := groupOMEMOAllowed(r); err != nil {
			return r, false, groupSendStatus(fmt.Errorf("%w: %w; nothing was sent", errGroupOMEMO, err))
		}
		return r, true, nil
	}
	return r, false, nil
}

// sendGroupCorrection sends a XEP-0308 correction of the user's own
// groupchat message, naming it by the id we sent it with.
func (c *Client) sendGroupCorrection(ctx context.Context, msg *bridgev2.MatrixEdit, room jid.JID) error {
	if err := c.ownGroupMessage(msg.EditTarget); err != nil {
		return err
	}
	orig := groupOriginID(msg.EditTarget)
	if orig == "" {
		return refusal(errors.New("the message has no id to correct"))
	}
	c.awaitRoomJoined(ctx, room)
	r, encrypted, err := c.groupTarget(msg.Portal, room)
	if err != nil {
		return err
	}
	s := c.currentSession()
	if s == nil {
		return xmppclient.ErrNotConnected
	}
	out := &xmppclient.Outgoing{To: room.Bare(), Room: true, ID: newMessageID(), Body: msgconv.BodyFromMatrix(ctx, msg.Content), Replace: orig}
	return c.Send(ctx, sendTarget{portal: msg.Portal, room: &r, session: s, encrypted: encrypted}, out)
}

// groupSendStatus is the message status for a Matrix message that was not
// sent to a group chat.
func groupSendStatus(err error) error {
	return groupSendStatusText(err, "Not sent: "+err.Error())
}

// groupSendStatusText is groupSendStatus with the text shown in Matrix.
func groupSendStatusText(err error, text string) error {
	return bridgev2.WrapErrorInStatus(err).
		WithStatus(event.MessageStatusFail).
		WithErrorReason(event.MessageStatusGenericError).
		WithMessage(text).
		WithIsCertain(true).
		WithSendNotice(true)
}

package bridge

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/metrics"
	"github.com/mxomemo/xmpp-bridge/msgconv"
	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/puppet"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

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
	out := &outgoingMessage{To: room.Bare(), Type: stanza.GroupChatMessage, ID: matrixMessageID(msg.Event)}
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
	stanzaOut, err := c.groupchatOut(ctx, s, r, encrypted, out)
	if err != nil {
		return nil, err
	}
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
		if err := s.Send(ctx, stanzaOut); err != nil {
			return fmt.Errorf("failed to send message to %s: %w", room, err)
		}
		return nil
	}, func(since time.Time) (bool, error) { return c.inRoomArchive(ctx, room, out.ID, since) })
	if err != nil {
		msg.RemovePending(txn)
		c.main.Metrics.MessageBridged(metrics.MatrixToXMPP, metrics.OutcomeFailedSend)
		return nil, err
	}
	if already {
		return &bridgev2.MatrixMessageResponse{DB: db, Pending: true}, nil
	}
	c.main.Metrics.MessageBridged(metrics.MatrixToXMPP, metrics.OutcomeOK)
	zerolog.Ctx(ctx).Debug().Str("xmpp_id", out.ID).Stringer("room", room).Bool("omemo", encrypted).Msg("Sent groupchat message to XMPP")
	if caption != "" {
		// A second message; its reflection is ours and not bridged back.
		capOut := &outgoingMessage{To: room.Bare(), Type: stanza.GroupChatMessage, ID: newMessageID(), Body: caption}
		st, err := c.groupchatOut(ctx, s, r, encrypted, capOut)
		if err == nil {
			err = s.Send(ctx, st)
		}
		if err != nil {
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

// groupchatOut builds the stanza of a message with a body for room r,
// OMEMO-encrypted when encrypted.
func (c *Client) groupchatOut(ctx context.Context, s *xmpp.Session, r xmppclient.Room, encrypted bool, out *outgoingMessage) (xml.TokenReader, error) {
	payload, err := mediaExtras(out, encrypted, out.payload())
	if err != nil {
		return nil, err
	}
	if !encrypted {
		return groupchatStanza(out, payload), nil
	}
	st, err := c.encryptGroupchat(ctx, s, r, out, payload)
	if err != nil {
		c.main.Metrics.MessageBridged(metrics.MatrixToXMPP, metrics.OutcomeFailedSend)
		return nil, err
	}
	return st, nil
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
	out := &outgoingMessage{To: room.Bare(), Type: stanza.GroupChatMessage, ID: newMessageID(), Body: msgconv.BodyFromMatrix(ctx, msg.Content), Replace: orig}
	stanzaOut, err := c.groupchatOut(ctx, s, r, encrypted, out)
	if err != nil {
		return err
	}
	if err := s.Send(ctx, stanzaOut); err != nil {
		return fmt.Errorf("failed to send correction to %s: %w", room, err)
	}
	return nil
}

// groupchatStanza is a plaintext groupchat message: the body and payload
// (the origin-id, also the id attribute, an active chat state, references
// and a file's OOB element).
func groupchatStanza(out *outgoingMessage, payload []xml.TokenReader) xml.TokenReader {
	body := xmlstream.Wrap(xmlstream.Token(xml.CharData(out.Body)), xml.StartElement{Name: xml.Name{Local: "body"}})
	msg := stanza.Message{To: out.To.Bare(), ID: out.ID, Type: stanza.GroupChatMessage}
	return msg.Wrap(xmlstream.MultiReader(append([]xml.TokenReader{body}, payload...)...))
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

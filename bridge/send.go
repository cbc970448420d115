package bridge

import (
	"context"
	"errors"
	"fmt"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"
	"mellium.im/xmpp"

	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// Matrix -> XMPP: every message with a body, in a 1:1 chat, a room or a
// private chat with an occupant, text, file, caption or correction, leaves
// through Send. Reactions, retractions, markers and chat states carry no
// content and go out as signals (sendSignal).

// sendTarget is where an outgoing message goes, from the portal the
// caller holds.
type sendTarget struct {
	// portal is the chat's portal: a 1:1 chat's encryption is decided
	// from its metadata at each attempt (omemochat.go).
	portal *bridgev2.Portal
	// room is set for a group chat: its members' devices are the
	// recipients, encrypted was decided by groupTarget (handlematrix.go), and
	// the message goes on session, the one the room was joined on.
	room      *xmppclient.Room
	session   *xmpp.Session
	encrypted bool
	// private is a private chat with a room occupant: never encrypted
	// (xmppclient.Outgoing.Private).
	private bool
}

// dmTarget is the 1:1 chat of portal p.
func dmTarget(p *bridgev2.Portal) sendTarget {
	return sendTarget{portal: p}
}

// Send is the one place a message with a body leaves for XMPP. The stanza
// is built, and OMEMO-encrypted when the chat is (never plaintext then),
// right before it goes out. A 1:1 message waits for a ready session and is
// sent again, under the same id, on the next one when the session is lost
// during the send (withSession); a room message goes on the session its
// room was joined on only, as on another one the room is not joined yet.
func (c *Client) Send(ctx context.Context, t sendTarget, out *xmppclient.Outgoing) error {
	// send builds the stanza on s (an encryption's device fetches use it)
	// and sends it; wrap says what a failed send means.
	send := func(s *xmpp.Session, wrap func(error) error) error {
		enc, err := c.encryptFor(ctx, s, t, out)
		if err != nil {
			return err
		}
		if err := xmppclient.SendMessage(ctx, s, out, enc); errors.Is(err, xmppclient.ErrSend) {
			return wrap(err)
		} else if err != nil {
			return err
		}
		zerolog.Ctx(ctx).Debug().Str("xmpp_id", out.ID).Stringer("to", out.To).Bool("omemo", enc != nil).Msg("Sent message to XMPP")
		// The Matrix intake marks the event done once the server has
		// acknowledged this (intake_ack.go).
		if c.main != nil && c.conn != nil {
			c.main.intake.written(out.ID, c.conn.AckWaiter())
		}
		return nil
	}
	if t.room != nil {
		return send(t.session, func(err error) error {
			return fmt.Errorf("failed to send message to %s: %w", t.room.JID, err)
		})
	}
	return c.withSession(ctx, func(s *xmpp.Session) error {
		return send(s, func(err error) error {
			return fmt.Errorf("%w: failed to send message to %s: %w", errSessionLost, out.To, err)
		})
	})
}

// encryptFor encrypts out for t's recipients when the chat is encrypted:
// the contact's devices (1:1) or the room members' (group chat), and ours;
// nil for a plaintext chat. A file uploaded for the other kind of chat is
// refused before anything is encrypted.
func (c *Client) encryptFor(ctx context.Context, s *xmpp.Session, t sendTarget, out *xmppclient.Outgoing) (*omemoxmpp.Outgoing, error) {
	encrypted := t.encrypted
	if t.room == nil && !t.private {
		var err error
		if encrypted, err = c.chatEncrypted(ctx, t.portal, out.To); err != nil {
			return nil, err
		}
	}
	if err := out.CheckMedia(encrypted); err != nil {
		return nil, mediaStatus(err, event.MessageStatusGenericError)
	}
	if !encrypted {
		return nil, nil
	}
	if t.room != nil {
		return c.encryptGroupchat(ctx, s, *t.room, out)
	}
	return c.encryptDM(ctx, out)
}

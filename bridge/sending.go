package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/mxomemo/xmpp-bridge/portal"
)

// A crash during the Matrix send of a message from XMPP.
//
// The deterministic transaction id (txnid.go) makes a resend return the
// first event, but Dendrite only records a transaction once its request
// completes: when the process dies while the request is in flight, the
// event can be in the room and the transaction forgotten. So the bridge
// keeps a durable "sending" mark (delivery_sending) from the conversion
// until bridgev2 stored the message, and puts a marker of the remote
// message into the event content. A message converted again while its mark
// exists is looked for in the room (the sender ghost's recent events); if
// it is there, bridgev2 gets the message row for that event and nothing is
// sent again.

// remoteMarkerKey is the content field naming the remote message.
const remoteMarkerKey = "net.mxomemo.remote"

// remoteMarker is the marker of a message id (a hash: ids name JIDs).
func remoteMarker(id networkid.MessageID) string {
	h := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(h[:18])
}

// sendingLookBack is how many of the ghost's latest events in the room are
// looked at, and sendingScanMax how many of the room's events at most
// (sendingPage at a time) to find them.
const (
	sendingLookBack = 50
	sendingScanMax  = 2000
	sendingPage     = 100
)

// sendingRetention: marks older than this are dropped.
const sendingRetention = 24 * time.Hour

// convertOnce wraps a conversion of a message from XMPP (1:1 or group
// chat) with the sending mark and the recovery check; recovered is the
// metadata of the message row stored for a message found in the room.
func convertOnce[T any](c *Client, id networkid.MessageID, sender bridgev2.EventSender, ts time.Time, recovered *portal.MessageMetadata,
	batch *markBatch, convert func(context.Context, *bridgev2.Portal, bridgev2.MatrixAPI, T) (*bridgev2.ConvertedMessage, error),
) func(context.Context, *bridgev2.Portal, bridgev2.MatrixAPI, T) (*bridgev2.ConvertedMessage, error) {
	if recovered == nil {
		recovered = &portal.MessageMetadata{}
	}
	return func(ctx context.Context, p *bridgev2.Portal, intent bridgev2.MatrixAPI, in T) (*bridgev2.ConvertedMessage, error) {
		log := zerolog.Ctx(ctx)
		marked, exists, err := c.main.sendingMarksOf(c.login.ID).begin(ctx, id, batch)
		if err != nil {
			log.Err(err).Msg("Failed to read the sending mark")
		}
		if marked {
			evtID, err := c.findSent(ctx, p.MXID, intent.GetMXID(), remoteMarker(id))
			if err != nil {
				log.Warn().Err(err).Msg("Failed to look for a message sent before a crash; sending it (again)")
			} else if evtID != "" {
				log.Info().Stringer("event_id", evtID).Msg("Message was sent before a crash; storing it without sending again")
				if err := c.main.Bridge.DB.Message.Insert(ctx, &database.Message{
					ID: id, MXID: evtID, Room: p.PortalKey, SenderID: sender.Sender,
					SenderMXID: intent.GetMXID(), Timestamp: ts, Metadata: recovered,
				}); err != nil {
					return nil, fmt.Errorf("failed to store a message sent before a crash: %w", err)
				}
				c.clearSending(ctx, id)
				return nil, bridgev2.ErrIgnoringRemoteEvent
			}
		}
		conv, err := convert(ctx, p, intent, in)
		if err != nil || conv == nil || len(conv.Parts) == 0 {
			if exists && !marked {
				// Nothing sent: the mark stays fresh (PostHandle drops it).
				c.main.sendingMarksOf(c.login.ID).unbegin(id)
			}
			return conv, err
		}
		armTxnSeed(ctx)
		part := conv.Parts[0]
		if part.Extra == nil {
			part.Extra = map[string]any{}
		}
		part.Extra[remoteMarkerKey] = remoteMarker(id)
		if !exists {
			// Not marked ahead (prepare): the mark is written here.
			if err := c.markSending(ctx, id, p.MXID); err != nil {
				// Without the mark a crash during the send could show the
				// message twice; not sending it would lose it.
				log.Err(err).Msg("Failed to record the sending mark")
			}
		}
		return conv, nil
	}
}

func (c *Client) sendingMarked(ctx context.Context, msgID networkid.MessageID) (bool, error) {
	return c.main.sendingMarksOf(c.login.ID).has(ctx, msgID)
}

func (c *Client) markSending(ctx context.Context, msgID networkid.MessageID, room id.RoomID) error {
	_, err := c.main.DB.Exec(ctx, `INSERT INTO delivery_sending (account, message_id, room_id, started) VALUES ($1, $2, $3, $4)
		ON CONFLICT (account, message_id) DO NOTHING`, string(c.login.ID), string(msgID), room.String(), time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("failed to record sending mark: %w", err)
	}
	c.main.sendingMarksOf(c.login.ID).added(msgID)
	return nil
}

// clearSending drops the mark of a stored message, its row with the next
// group commit (sendingmarks.go).
func (c *Client) clearSending(ctx context.Context, msgID networkid.MessageID) {
	c.main.sendingMarksOf(c.login.ID).clear(ctx, msgID)
}

// sweepSending drops old marks (of messages that never got stored).
func (c *Client) sweepSending(ctx context.Context) {
	marks := c.main.sendingMarksOf(c.login.ID)
	marks.flush(ctx)
	if _, err := c.main.DB.Exec(ctx, `DELETE FROM delivery_sending WHERE account=$1 AND started<$2`,
		string(c.login.ID), time.Now().Add(-sendingRetention).UnixMilli()); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to clean up sending marks")
	}
	marks.invalidate()
}

// findSent looks for the event with marker among sender's latest
// sendingLookBack events in room, as the bridge bot (decrypting encrypted
// ones with the bridge's own Megolm sessions).
//
// It pages through the room's events without a server-side filter:
// Dendrite v0.15.2 applies a /messages filter after it has taken `limit`
// events of the room (syncapi GetEventsInTopologicalRange), and ends the
// pagination when a page has none that pass. With a sender filter, a
// message cut by a crash was missed as soon as the room had more than a
// page of other events after it (the Matrix user's own messages while the
// bridge restarted), and was sent a second time (TestRoomKill, TestKill).
func (c *Client) findSent(ctx context.Context, room id.RoomID, sender id.UserID, marker string) (id.EventID, error) {
	mc, ok := c.main.Bridge.Matrix.(*matrix.Connector)
	if !ok || mc.Bot == nil {
		return "", errors.New("not the appservice connector")
	}
	page := func(ctx context.Context, from string) (*mautrix.RespMessages, error) {
		return mc.Bot.Messages(ctx, room, from, "", mautrix.DirectionBackward, nil, sendingPage)
	}
	markerOf := func(evt *event.Event) string { return c.sentMarker(ctx, mc, room, evt) }
	evtID, scan, err := scanForMarker(ctx, page, sender, marker, markerOf)
	if err != nil {
		return "", err
	}
	log := zerolog.Ctx(ctx).Debug().Int("room_events_scanned", scan.events).Int("ghost_events_scanned", scan.ghost)
	if evtID != "" {
		log.Msg("Found the message sent before a crash in the room")
	} else {
		log.Msg("The message marked as sending is not in the room")
	}
	return evtID, nil
}

// sentScan is how far scanForMarker looked.
type sentScan struct{ events, ghost int }

// scanForMarker pages backward through a room (page: one unfiltered
// /messages page from the token) until it finds sender's event whose
// marker (markerOf) is marker, has seen sendingLookBack of sender's
// events, has seen sendingScanMax events or has reached the room's start.
func scanForMarker(ctx context.Context, page func(context.Context, string) (*mautrix.RespMessages, error),
	sender id.UserID, marker string, markerOf func(*event.Event) string,
) (id.EventID, sentScan, error) {
	var scan sentScan
	from := ""
	for scan.events < sendingScanMax {
		resp, err := page(ctx, from)
		if err != nil {
			return "", scan, fmt.Errorf("failed to read the room: %w", err)
		}
		for _, evt := range resp.Chunk {
			scan.events++
			if evt.Sender != sender || !sentType(evt.Type) {
				continue
			}
			scan.ghost++
			if markerOf(evt) == marker {
				return evt.ID, scan, nil
			}
			if scan.ghost >= sendingLookBack {
				return "", scan, nil
			}
		}
		if resp.End == "" || len(resp.Chunk) == 0 || resp.End == from {
			break
		}
		from = resp.End
	}
	return "", scan, nil
}

// sentType says whether events of type t can carry a remote marker.
func sentType(t event.Type) bool {
	return t == event.EventMessage || t == event.EventEncrypted || t == event.EventSticker
}

// sentMarker is the remote marker of evt (decrypted first when encrypted),
// or "".
func (c *Client) sentMarker(ctx context.Context, mc *matrix.Connector, room id.RoomID, evt *event.Event) string {
	if evt.Type == event.EventEncrypted {
		if mc.Crypto == nil {
			return ""
		}
		evt.RoomID = room
		if err := evt.Content.ParseRaw(evt.Type); err != nil {
			return ""
		}
		dec, err := mc.Crypto.Decrypt(ctx, evt)
		if err != nil {
			return ""
		}
		evt = dec
	}
	m, _ := evt.Content.Raw[remoteMarkerKey].(string)
	return m
}

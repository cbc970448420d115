package bridge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/puppet"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// The OMEMO inbox (omemo_inbox, migrations/03-omemo-inbox.sql and
// 04-omemo-inbox-room.sql): incoming OMEMO messages and their atomicity.
//
// bridgev2 handles a remote event in the portal's own event loop, after our
// queueing returned, and sends it to Matrix before it stores the message
// row; the Matrix send (and end-to-bridge encryption, which writes to the
// same database) runs on other connections. Holding a transaction open
// across that would hold SQLite's write lock across HTTP calls and
// deadlock against the crypto store, so the ratchet step cannot share
// bridgev2's message insert.
//
// Instead decryption runs in our own transaction that also writes the
// result to omemo_inbox, keyed by the bridgev2 message ID: either both the
// ratchet step and the plaintext are committed or neither. A stanza seen
// again (archive catch-up, offline delivery after a carbon) is answered
// from the inbox without touching the ratchet, so nothing is applied
// twice; a crash after the commit but before bridgev2 stored the message
// loses nothing, because on the next connect rows whose message bridgev2
// does not have are queued again (bridgev2 drops anything it has by ID).
// The plaintext is cleared once bridgev2 has the message (checked when the
// login connects and at most once a minute as messages arrive);
// corrections are not replayed, as bridgev2 keeps no row
// of its own for them to check against.

// inboxKind is what an inbox row holds.
type inboxKind int

const (
	inboxText   inboxKind = iota // a chat message
	inboxEmpty                   // key transport or heartbeat: never shown
	inboxFailed                  // the ratchet moved but the content was bad: body is the notice
)

// inboxRetention is how long a row outlives its plaintext, to recognise
// redelivered stanzas.
const inboxRetention = 30 * 24 * time.Hour

// inboxEntry is one decrypted message.
type inboxEntry struct {
	MessageID string
	Peer      string
	// Sender is, in a group chat (Peer is the room), the real bare JID of
	// the occupant who sent the message; "" in 1:1 chats.
	Sender    string
	FromMe    bool
	Kind      inboxKind
	Body      string
	XMPPID    string
	Replace   string
	Version   omemo.Version
	Device    uint32
	Trusted   bool
	Timestamp time.Time
}

func (c *Client) inboxGet(ctx context.Context, messageID string) (*inboxEntry, error) {
	var e inboxEntry
	var body sql.NullString
	var kind, version int
	var device, ts int64
	err := c.main.DB.QueryRow(ctx, `SELECT message_id, peer, sender, from_me, kind, body, xmpp_id, replace_id, version, device_id, trusted, timestamp
		FROM omemo_inbox WHERE account=$1 AND message_id=$2`, string(c.login.ID), messageID).
		Scan(&e.MessageID, &e.Peer, &e.Sender, &e.FromMe, &kind, &body, &e.XMPPID, &e.Replace, &version, &device, &e.Trusted, &ts)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("failed to look up OMEMO inbox: %w", err)
	}
	e.Kind, e.Body, e.Version, e.Device = inboxKind(kind), body.String, omemo.Version(version), uint32(device)
	e.Timestamp = time.UnixMilli(ts)
	return &e, nil
}

func (c *Client) inboxPut(ctx context.Context, e *inboxEntry) error {
	var body sql.NullString
	if e.Kind != inboxEmpty {
		body = sql.NullString{String: e.Body, Valid: true}
	}
	_, err := c.main.DB.Exec(ctx, `INSERT INTO omemo_inbox (account, message_id, peer, sender, from_me, kind, body, xmpp_id, replace_id,
			version, device_id, trusted, timestamp, received)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		string(c.login.ID), e.MessageID, e.Peer, e.Sender, e.FromMe, int(e.Kind), body, e.XMPPID, e.Replace,
		int(e.Version), int64(e.Device), e.Trusted, e.Timestamp.UnixMilli(), time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("failed to save OMEMO inbox entry: %w", err)
	}
	return nil
}

// editPending is how long the plaintext of a correction is kept: bridgev2
// stores no row of its own for an edit, so there is nothing to wait for,
// and an edit is not worth replaying after a crash.
const editPending = time.Minute

// inboxSweep clears the plaintext of rows bridgev2 has stored (and of
// corrections) and drops rows past the retention.
func (c *Client) inboxSweep(ctx context.Context) {
	_, err := c.main.DB.Exec(ctx, `UPDATE omemo_inbox SET body=NULL
		WHERE account=$1 AND body IS NOT NULL AND EXISTS (
			SELECT 1 FROM message WHERE message.bridge_id=$2 AND message.room_receiver=$1 AND message.id=omemo_inbox.message_id)`,
		string(c.login.ID), string(c.main.Bridge.ID))
	if err == nil {
		_, err = c.main.DB.Exec(ctx, `UPDATE omemo_inbox SET body=NULL WHERE account=$1 AND body IS NOT NULL AND replace_id<>'' AND received<$2`,
			string(c.login.ID), time.Now().Add(-editPending).UnixMilli())
	}
	if err == nil {
		_, err = c.main.DB.Exec(ctx, `DELETE FROM omemo_inbox WHERE account=$1 AND received<$2`,
			string(c.login.ID), time.Now().Add(-inboxRetention).UnixMilli())
	}
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to clean up OMEMO inbox")
	}
}

// sweepInterval bounds how long plaintext of bridged messages stays in the
// inbox while the login is connected.
const sweepInterval = time.Minute

// maybeSweep runs inboxSweep at most once per sweepInterval.
func (c *Client) maybeSweep(ctx context.Context) {
	c.omemoDB.mu.Lock()
	due := time.Since(c.omemoDB.lastSweep) >= sweepInterval
	if due {
		c.omemoDB.lastSweep = time.Now()
	}
	c.omemoDB.mu.Unlock()
	if due {
		c.inboxSweep(ctx)
	}
}

// requeuePending queues again the decrypted messages bridgev2 did not store
// before the bridge stopped.
func (c *Client) requeuePending(ctx context.Context) {
	c.inboxSweep(ctx)
	rows, err := c.main.DB.Query(ctx, `SELECT message_id FROM omemo_inbox WHERE account=$1 AND body IS NOT NULL AND replace_id='' ORDER BY received`,
		string(c.login.ID))
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to list pending OMEMO messages")
		return
	}
	var ids []string
	for rows.Next() {
		var id string
		if rows.Scan(&id) == nil {
			ids = append(ids, id)
		}
	}
	_ = rows.Close()
	for _, id := range ids {
		e, err := c.inboxGet(ctx, id)
		if err != nil || e == nil {
			continue
		}
		in, err := c.inboxIncoming(e)
		if err != nil {
			continue
		}
		if in.Body != "" {
			zerolog.Ctx(ctx).Info().Str("message_id", id).Bool("group_chat", in.Room != nil).Msg("Queueing OMEMO message decrypted before a restart")
			c.queueMessage(in)
		}
	}
}

// inboxIncoming is the message an inbox row keeps, 1:1 or (with a sender)
// group chat, with its decryption result.
func (c *Client) inboxIncoming(e *inboxEntry) (*incoming, error) {
	peer, err := jid.Parse(e.Peer)
	if err != nil {
		return nil, err
	}
	in := &incoming{Message: xmppclient.Message{Peer: peer, FromMe: e.FromMe, XMPPID: e.XMPPID, Timestamp: e.Timestamp}}
	if e.Sender != "" {
		sender, err := jid.Parse(e.Sender)
		if err != nil {
			return nil, err
		}
		// A room's message is kept under its stanza-id (decryptIncoming).
		in.Message = xmppclient.Message{Peer: peer.Bare(), FromMe: e.FromMe, StanzaID: e.XMPPID, Timestamp: e.Timestamp}
		in.Room = &roomFields{Kind: xmppclient.GroupchatMessage, Encrypted: true}
		in.ID = networkid.MessageID(e.MessageID)
		in.Sender = bridgev2.EventSender{Sender: puppet.UserID(sender)}
		if e.FromMe {
			in.Sender = bridgev2.EventSender{IsFromMe: true, SenderLogin: c.login.ID, Sender: puppet.UserID(c.account)}
		}
	}
	applyInbox(in, e)
	return in, nil
}

// applyInbox puts a decryption result into in.
func applyInbox(in *incoming, e *inboxEntry) {
	in.applyOMEMO(inboxResult(e))
}

// inboxResult is what an inbox row says about its message.
func inboxResult(e *inboxEntry) *omemoResult {
	r := &omemoResult{Info: &omemoIncoming{Version: e.Version, Device: e.Device, Trusted: e.Trusted, Failed: e.Kind == inboxFailed}}
	switch e.Kind {
	case inboxText:
		r.Body, r.Replace = e.Body, e.Replace
	case inboxFailed:
		r.Body = e.Body
	}
	return r
}

// deleteInbox drops every inbox row of login (logout, device reset).
func deleteInbox(ctx context.Context, db *dbutil.Database, login networkid.UserLoginID) error {
	if _, err := db.Exec(ctx, `DELETE FROM omemo_inbox WHERE account=$1`, string(login)); err != nil {
		return fmt.Errorf("failed to delete OMEMO inbox: %w", err)
	}
	return nil
}

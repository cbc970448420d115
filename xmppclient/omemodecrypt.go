package xmppclient

import (
	"context"
	"errors"
	"fmt"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
)

// The protocol part of decrypting one incoming OMEMO message: the ratchet
// step under the login's lock (Ratchet.Decrypt hands the caller a decrypt
// function valid only while the lock is held, inside the caller's
// transaction that records the result), the checks of what the message is
// for (NotForUs) and of whom its envelope names (CheckEnvelopeTo).

// DecryptFunc decrypts the message Ratchet.Decrypt was given, once, while
// the lock is held.
type DecryptFunc func(ctx context.Context) (*omemoxmpp.Message, error)

// Decrypt runs step under the lock: the ratchet step of one incoming
// message (step calls decrypt, in its own transaction) with the caller's
// record of its result. sender is the sender's real bare JID; in a room
// (room set) the room asserts it, so a device is trusted blindly only if
// that JID lists it (omemo.ListedOnly).
func (r *Ratchet) Decrypt(oc *omemoxmpp.Client, sender jid.JID, rcv *omemoxmpp.Received, room bool, step func(decrypt DecryptFunc) error) error {
	r.op.Lock()
	defer r.op.Unlock()
	return step(func(ctx context.Context) (*omemoxmpp.Message, error) {
		if room {
			ctx = omemo.ListedOnly(ctx)
		}
		return oc.Decrypt(ctx, sender, rcv)
	})
}

// NotForUs reports whether rcv is someone else's heartbeat or key
// transport (from an archive): no payload, and no key for our device, so
// nothing to show and no ratchet of ours to move.
func NotForUs(rcv *omemoxmpp.Received, account jid.JID, device uint32) bool {
	return Payloadless(rcv) && !keyedFor(rcv, account, device)
}

// Payloadless reports whether no <encrypted/> element of rcv has a payload
// (a key transport or heartbeat).
func Payloadless(rcv *omemoxmpp.Received) bool {
	for _, el := range rcv.Elements {
		if el.Payload != nil {
			return false
		}
	}
	return true
}

// keyedFor reports whether rcv holds a key for the device of account.
func keyedFor(rcv *omemoxmpp.Received, account jid.JID, device uint32) bool {
	for _, el := range rcv.Elements {
		if el.KeyFor(account.Bare().String(), device) != nil {
			return true
		}
	}
	return false
}

// The OMEMO 2 envelope (XEP-0420) names whom the sender encrypted for in
// <to/>; the stanza around it is not authenticated, so a message could be
// taken out of one chat and put into another (a group message delivered as
// a 1:1 message, or into another room) by whoever relays it. The envelope
// decides: a 1:1 message must be addressed to us (or not addressed, as
// many clients send them), our own message from another client to the
// contact, a group message to the room it came from.

// ErrSCEMisaddressed: the envelope names another chat than the one the
// message arrived in.
var ErrSCEMisaddressed = errors.New("its encrypted envelope is addressed to another chat")

// CheckEnvelopeTo checks the envelope's <to/> of a decrypted message
// against the chat it came in: peer (the contact's or the room's JID),
// room for a group chat, fromMe for our own message from another client.
// 0.3 messages have no envelope.
func CheckEnvelopeTo(msg *omemoxmpp.Message, peer jid.JID, room, fromMe bool, account jid.JID) error {
	if msg == nil || msg.Version != omemo.V2 || msg.Empty {
		return nil
	}
	var want []jid.JID
	switch {
	case room:
		want = []jid.JID{peer.Bare()}
	case msg.To == "":
		return nil
	case fromMe:
		want = []jid.JID{peer.Bare(), account.Bare()}
	default:
		want = []jid.JID{account.Bare()}
	}
	to, err := jid.Parse(msg.To)
	if err == nil {
		for _, w := range want {
			if to.Bare().Equal(w) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w (%q, in the chat with %s)", ErrSCEMisaddressed, msg.To, peer.Bare())
}

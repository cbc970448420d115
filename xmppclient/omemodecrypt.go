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
// step under the login's lock (ratchetLock.Decrypt hands the caller a decrypt
// function valid only while the lock is held, inside the caller's
// transaction that records the result), the checks of what the message is
// for (NotForUs) and of whom its envelope names (CheckEnvelopeTo).

// decryptFunc decrypts the message ratchetLock.Decrypt was given, once, while
// the lock is held.
type decryptFunc func(ctx context.Context) (*omemoxmpp.Message, error)

// Decrypt runs step under the lock: the ratchet step of one incoming
// message (step calls decrypt, in its own transaction) with the caller's
// record of its result. sender is the sender's real bare JID; in a room
// (room set) the room asserts it, so a device is trusted blindly only if
// that JID lists it (omemo.ListedOnly).
func (r *ratchetLock) Decrypt(oc *omemoxmpp.Client, sender jid.JID, rcv *omemoxmpp.Received, room bool, step func(decrypt decryptFunc) error) error {
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

// DecryptRequest is one incoming OMEMO message to decrypt, as the 1:1 and
// the group chat paths both describe it.
type DecryptRequest struct {
	Received *omemoxmpp.Received
	// Sender is the sender's real bare JID: the contact, our own account,
	// or a room occupant's real JID (which the room asserts).
	Sender jid.JID
	// Peer is the chat: the contact's bare JID, or the room's.
	Peer   jid.JID
	Room   bool
	FromMe bool
}

// Decrypted is what the ratchet step gave: Message is nil when the
// engine's state did not move (Err says why); Err is also set when it
// moved but the content is not to be shown (a misaddressed envelope).
type Decrypted struct {
	Message *omemoxmpp.Message
	Err     error
}

// DecryptStep is the ratchet step of a request, valid once, while
// OMEMO.Decrypt holds the lock.
type DecryptStep func(ctx context.Context) Decrypted

// DecryptOutcome is what OMEMO.Decrypt did with a request.
type DecryptOutcome int

const (
	// DecryptRecorded: the caller's record ran under the lock (it may have
	// answered from its own record without calling the step).
	DecryptRecorded DecryptOutcome = iota
	// DecryptNotForUs: someone else's heartbeat or key transport, or a
	// message of this very device back from an archive: nothing to show,
	// no ratchet of ours to move.
	DecryptNotForUs
	// DecryptUnavailable: the login's device is not set up.
	DecryptUnavailable
)

// Decryption is the typed result of OMEMO.Decrypt.
type Decryption struct {
	Outcome DecryptOutcome
	// Device is the sender's device the message names.
	Device uint32
	// Stepped is set when the record called the step; Decrypted is then
	// its result.
	Stepped bool
	Decrypted
}

// Decrypt decrypts one incoming message: under the ratchet lock it runs
// record, the caller's transaction that keeps the result (its own record
// may answer first: then it does not call step). Whatever the result asks
// of the network (a reset when due, a republish of a used prekey, a
// heartbeat, the sender's device list, a key change notice) is queued
// afterwards, outside the lock; nothing is queued when record fails (its
// transaction, with the ratchet step, did not commit).
func (o *OMEMO) Decrypt(ctx context.Context, req DecryptRequest, record func(ctx context.Context, step DecryptStep) error) (Decryption, error) {
	d := Decryption{Device: req.Received.Elements[0].SenderDevice}
	o.mu.Lock()
	oc, account := o.oc, o.account
	o.mu.Unlock()
	switch {
	case oc != nil && NotForUs(req.Received, account, oc.Manager().DeviceID()):
		d.Outcome = DecryptNotForUs
		return d, nil
	case oc == nil:
		d.Outcome, d.Err = DecryptUnavailable, ErrOMEMOUnavailable
		return d, nil
	case req.FromMe && d.Device == oc.Manager().DeviceID():
		// Sent by this very device (heartbeats, resets, messages from
		// Matrix), back from the archive: never for us to read.
		d.Outcome = DecryptNotForUs
		return d, nil
	}
	err := o.ratchet.Decrypt(oc, req.Sender, req.Received, req.Room, func(decrypt decryptFunc) error {
		return record(ctx, func(ctx context.Context) Decrypted {
			msg, err := decrypt(ctx)
			if msg != nil && err == nil {
				// The ratchet moved on; a misaddressed message is a notice.
				err = CheckEnvelopeTo(msg, req.Peer, req.Room, req.FromMe, account)
			}
			d.Stepped, d.Decrypted = true, Decrypted{Message: msg, Err: err}
			return d.Decrypted
		})
	})
	if err != nil {
		return d, err
	}
	if d.Stepped {
		o.followUp(ctx, oc, req, d)
	}
	return d, nil
}

// followUp queues what one ratchet step asks for.
func (o *OMEMO) followUp(ctx context.Context, oc *omemoxmpp.Client, req DecryptRequest, d Decryption) {
	v := req.Received.Elements[0].Version
	msg := d.Message
	if msg == nil {
		if !errors.Is(d.Err, omemo.ErrDuplicate) {
			o.ResetIfDue(ctx, req.Sender, d.Device, v, d.Err)
		}
		return
	}
	sender := req.Sender.Bare()
	// A device the sender's lists do not name: fetch them, so the reply
	// reaches it (omemodevices.go).
	o.fetches.LearnSender(ctx, oc, sender, msg.Sender.Device)
	o.ResetIfDue(ctx, sender, msg.Sender.Device, v, nil)
	if msg.PreKeyConsumed {
		o.Enqueue(ctx, OMEMOTask{Kind: TaskRepublish})
	}
	if msg.SendHeartbeat {
		o.Enqueue(ctx, OMEMOTask{Kind: TaskHeartbeat, Peer: sender, Device: msg.Sender.Device, Version: msg.Version})
	}
	o.AfterTrust(ctx, req, msg)
}

// AfterTrust queues what a decrypted message's trust asks for. A device
// that is not trusted may simply not be in the stored device list yet (a
// room member whose list we never fetched): its list is fetched, so that
// later messages are judged on it. An identity key that changed on a known
// device id is never trusted silently: the connector posts a notice.
func (o *OMEMO) AfterTrust(ctx context.Context, req DecryptRequest, msg *omemoxmpp.Message) {
	sender := req.Sender.Bare()
	if msg.KeyChanged {
		o.Enqueue(ctx, OMEMOTask{Kind: TaskKeyChanged, Peer: sender, Device: msg.Sender.Device,
			Fingerprint: msg.Fingerprint, Room: req.Room, Chat: req.Peer.Bare()})
	}
	o.mu.Lock()
	policy := o.policy
	o.mu.Unlock()
	if !msg.Trusted && !req.FromMe && policy == omemo.PolicyBTBV {
		o.Enqueue(ctx, OMEMOTask{Kind: TaskFetchDevices, Peer: sender})
	}
}

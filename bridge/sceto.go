package bridge

import (
	"errors"
	"fmt"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
)

// The OMEMO 2 envelope (XEP-0420) names whom the sender encrypted for in
// <to/>; the stanza around it is not authenticated, so a message could be
// taken out of one chat and put into another (a group message delivered as
// a 1:1 message, or into another room) by whoever relays it. The envelope
// decides: a 1:1 message must be addressed to us (or not addressed, as
// many clients send them), our own message from another client to the
// contact, a group message to the room it came from.

// errSCEMisaddressed: the envelope names another chat than the one the
// message arrived in.
var errSCEMisaddressed = errors.New("its encrypted envelope is addressed to another chat")

// checkSCETo checks the envelope's <to/> of a decrypted message against the
// chat job came in. 0.3 messages have no envelope.
func checkSCETo(msg *omemoxmpp.Message, job omemoJob, account jid.JID) error {
	if msg == nil || msg.Version != omemo.V2 || msg.Empty {
		return nil
	}
	var want []jid.JID
	switch {
	case job.Room:
		want = []jid.JID{job.Peer.Bare()}
	case msg.To == "":
		return nil
	case job.FromMe:
		want = []jid.JID{job.Peer.Bare(), account.Bare()}
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
	return fmt.Errorf("%w (%q, in the chat with %s)", errSCEMisaddressed, msg.To, job.Peer.Bare())
}

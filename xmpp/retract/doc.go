// Package retract implements XEP-0424: Message Retraction.
//
// A retraction is a message with <retract id='…'
// xmlns='urn:xmpp:message-retract:1'/> naming the message to delete: in 1:1
// chats by the id the sender gave it (the bridge sends id and origin-id
// equal), in groupchats by the stanza-id the room assigned. For clients that
// do not understand it, the retraction carries a fallback body marked with
// XEP-0428 <fallback for='urn:xmpp:message-retract:1'/>, and a <store/>
// hint so servers archive it. The bridge maps retractions to Matrix
// redactions and back.
//
// Parse also understands version 0 (<apply-to xmlns='urn:xmpp:fasten:0'>
// around <retract xmlns='urn:xmpp:message-retract:0'/>), which older
// clients still send. Only the author may retract a message; checking that
// the retraction's sender is the original's is the caller's job, as for
// corrections (correct.SameSender).
// mellium.im/xmpp has no message retraction.
package retract // import "github.com/mxomemo/xmpp-bridge/xmpp/retract"

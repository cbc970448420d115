// Package reactions implements XEP-0444: Message Reactions.
//
// A <reactions id='…'/> element carries the complete set of emoji the
// sender reacts with to the message id (1:1: the message's id attribute;
// groupchat: the room's stanza-id): each new one replaces the sender's
// previous set, and an empty one removes them all. The bridge therefore
// diffs sets against what it stored to produce Matrix reaction events and
// redactions, and sends the full set whenever the Matrix user adds or
// removes one.
//
// Reactions are not otherwise validated as emoji (the XEP only says SHOULD),
// but empty, duplicate and oversized ones are dropped or rejected, so a
// hostile peer cannot make the bridge store arbitrary amounts of text.
// mellium.im/xmpp has no reactions.
package reactions // import "github.com/mxomemo/xmpp-bridge/xmpp/reactions"

// Package correct implements XEP-0308: Last Message Correction.
//
// A correction is a new message whose <replace id='…'/> names the id
// attribute of the message it replaces (in 1:1 chats and in groupchats
// alike; not the stanza-id). The bridge turns corrections into Matrix edits
// and Matrix edits into corrections.
//
// Anyone can send a <replace/> naming any id, so a correction must come from
// the sender of the original (XEP-0308 §6): SameSender checks this.
// mellium.im/xmpp has no message correction.
package correct // import "github.com/mxomemo/xmpp-bridge/xmpp/correct"

// Package reply implements XEP-0461: Message Replies, with the XEP-0428
// fallback that quotes the replied-to text for clients without reply
// support.
//
// <reply to='…' id='…'/> names the message replied to (1:1: its id
// attribute; groupchat: the room's stanza-id) and optionally its author.
// The body usually starts with a "> " quote of the original marked as
// fallback; Strip removes it, so that Matrix shows the reply relation
// instead of the quote twice. Message builds the same shape for replies
// from Matrix.
// mellium.im/xmpp has no replies.
package reply // import "github.com/mxomemo/xmpp-bridge/xmpp/reply"

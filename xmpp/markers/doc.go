// Package markers implements XEP-0333: Displayed Markers (chat markers).
//
// A sender marks a message <markable/>; the recipient answers with
// <received/>, <displayed/> or <acknowledged/> naming the message. The
// bridge turns displayed markers into Matrix read receipts and Matrix read
// receipts into displayed markers. In 1:1 chats the id is the marked
// message's id attribute; in groupchats it is the stanza-id the room
// assigned (XEP-0333 §3.3), which callers take from sid.IDs.StanzaIDBy.
//
// mellium.im/xmpp has XEP-0184 receipts but no chat markers.
package markers // import "github.com/mxomemo/xmpp-bridge/xmpp/markers"

// Package bookmarks implements the group chat bookmarks of XEP-0402: PEP
// Native Bookmarks (one item per room on the PEP node urn:xmpp:bookmarks:1,
// pushed to clients that advertise urn:xmpp:bookmarks:1+notify) and of the
// older XEP-0048 in XEP-0049 private XML storage (storage:bookmarks), which
// many accounts still hold and servers without the urn:xmpp:bookmarks:1#compat
// feature do not convert.
//
// Conference is one bookmark; ParseItem and Conference.TokenReader read and
// build the XEP-0402 payload, FetchLegacy and StoreLegacy the XEP-0048
// storage element. Unknown parts (XEP-0402 <extensions/>, XEP-0048 <url/>
// bookmarks) are kept, so that rewriting a bookmark to change autojoin does
// not lose what another client stored in it. The package knows nothing of
// the bridge.
package bookmarks // import "github.com/mxomemo/xmpp-bridge/xmpp/bookmarks"

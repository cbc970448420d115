// Package msgconv converts message content between Matrix and XMPP, both
// ways: Matrix HTML to an XMPP body with XEP-0393 styling and back
// (text.go), corrections (text.go), XEP-0444 reaction sets into bridgev2's
// reaction sync (reactions.go), and the naming, typing and capability side
// of shared files (media.go), voice messages (voice.go: Ogg Opus ⇄ MSC3245).
//
// It works on values only: no network, no database, no XMPP session. The
// file transfer itself (downloads, uploads, XEP-0454 encryption) is in
// xmppclient; the bridge package calls both. It may import mautrix's event
// and bridgev2 types, portal and the xmpp/* value packages; never bridge or
// xmppclient.
package msgconv // import "github.com/mxomemo/xmpp-bridge/msgconv"

// Package hints implements XEP-0334: Message Processing Hints.
//
// The bridge adds <store/> to reactions, retractions and chat markers so
// that servers archive them in MAM although they have no body, and
// <no-store/>/<no-copy/> to chat states. mellium.im/xmpp only writes
// <no-copy/> as part of carbons.Private; this package gives the hints as
// values and reads them back from messages.
package hints // import "github.com/mxomemo/xmpp-bridge/xmpp/hints"

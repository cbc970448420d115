// Package chatstates implements XEP-0085: Chat State Notifications
// (typing indicators).
//
// mellium.im/xmpp has no chat states. The bridge maps composing/paused to
// Matrix typing notifications and sends them back for the Matrix user.
// Standalone notifications carry <no-store/> so they stay out of archives.
package chatstates // import "github.com/mxomemo/xmpp-bridge/xmpp/chatstates"

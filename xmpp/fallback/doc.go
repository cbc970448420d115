// Package fallback implements XEP-0428: Fallback Indication.
//
// Replies, retractions and other extensions put text for clients that do
// not understand them into <body/> and mark it with
// <fallback for='namespace'/>: the whole body, or character ranges of it.
// A client that understands the extension named by for strips that text.
// Ranges count Unicode code points (XEP-0426), end exclusive, so they are
// applied to []rune, never to bytes.
//
// Hostile ranges (out of bounds, reversed, overlapping) are rejected with
// ErrBadRange rather than clamped; the caller then shows the full body.
// mellium.im/xmpp has no fallback indication.
package fallback // import "github.com/mxomemo/xmpp-bridge/xmpp/fallback"

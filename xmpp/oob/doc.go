// Package oob implements the message part of XEP-0066: Out of Band Data.
//
// <x xmlns='jabber:x:oob'><url>…</url></x> next to a body that is exactly
// the same URL is how XMPP clients mark a message as a shared file (the
// XEP-0363 convention): such a message is shown as the file, not as a link.
// It must never accompany an OMEMO-encrypted message, where it would reveal
// the link in plaintext. mellium.im/xmpp has no out of band data.
package oob // import "github.com/mxomemo/xmpp-bridge/xmpp/oob"

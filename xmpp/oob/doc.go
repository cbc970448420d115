// Package oob reads and writes the message part of XEP-0066: Out of Band Data.
//
// <x xmlns='jabber:x:oob'><url>…</url></x> next to a body that is exactly
// the same URL is how XMPP clients mark a message as a shared file (the
// XEP-0363 convention): such a message is shown as the file, not as a link.
// It must never accompany an OMEMO-encrypted message, where it would reveal
// the link in plaintext. mellium.im/xmpp/oob has the element; this package
// adds what the bridge needs around it: finding it among a message's
// children (Parse) and refusing an element without a URL.
package oob // import "github.com/mxomemo/xmpp-bridge/xmpp/oob"

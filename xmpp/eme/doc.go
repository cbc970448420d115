// Package eme implements XEP-0380: Explicit Message Encryption.
//
// An <encryption namespace='…'/> element says which end-to-end encryption
// a message uses, so that a client that cannot decrypt it can say so
// instead of showing the fallback body as if it were the message. The
// bridge adds it to OMEMO messages it sends and uses it on receipt to tell
// the Matrix user which encryption it could not handle.
// mellium.im/xmpp has no EME.
package eme // import "github.com/mxomemo/xmpp-bridge/xmpp/eme"

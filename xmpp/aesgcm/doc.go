// Package aesgcm implements the file encryption of XEP-0454: OMEMO Media
// Sharing.
//
// A file shared in an OMEMO chat is encrypted with AES-256-GCM under a fresh
// random key and IV, the ciphertext with its 16-byte tag appended is uploaded
// (XEP-0363), and the link is sent inside the OMEMO-encrypted body as
// aesgcm://host/path#<iv hex><key hex>. The fragment is the secret: Redact
// gives a form of the URL that is safe to log or show.
//
// The package does no networking and imports nothing of ours.
package aesgcm // import "github.com/mxomemo/xmpp-bridge/xmpp/aesgcm"

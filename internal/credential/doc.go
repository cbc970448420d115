// Package credential seals the XMPP passwords the bridge stores (they are
// needed in clear for SCRAM on every reconnect) with AES-256-GCM under a key
// from the bridge config, so that a copy of the database alone does not
// give the accounts away.
//
// A sealed password is "v1:<key id>:<base64 of nonce and ciphertext>". The
// key id names the key it was sealed with, so that a different key in the
// config is reported as such rather than as damage; the associated data
// (the login's ID) ties it to its row.
//
// It must not import anything of the bridge: it only knows strings and keys.
package credential

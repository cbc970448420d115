// Package deploy holds the small pieces of operations logic the bridge's main runs at startup,
// where mxmain's own behaviour is correct but its message leaves an admin guessing. Today that
// is the check that the bridge was given a database of its own (not the homeserver's).
//
// It imports nothing of ours; only cmd/bridge imports it.
package deploy

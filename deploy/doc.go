// Package deploy holds the small pieces of operations logic the bridge's main runs at startup,
// where mxmain's own behaviour is correct but its message leaves an admin guessing. Today that
// is the check that the bridge was given a database of its own (not the homeserver's), and the
// database section tuned before the pool opens (TuneDatabase).
//
// It imports only internal/pgstmt of ours (the PostgreSQL driver TuneDatabase switches to,
// registered by the import); only cmd/bridge imports it.
package deploy

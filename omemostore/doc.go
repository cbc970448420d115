// Package omemostore keeps an omemo.Manager's state in the bridge database
// (PostgreSQL or SQLite through go.mau.fi/util/dbutil).
//
// Every row is scoped to one account (the bridgev2 UserLogin ID), so several
// XMPP logins share the tables without seeing each other's keys. The tables
// are created by the upgrades in package migrations.
//
// Each method runs on the transaction carried by its context when there is
// one (dbutil.Database.DoTxn), which is how the bridge commits a ratchet step
// and the bridged-message record together.
package omemostore

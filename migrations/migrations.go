package migrations

import (
	"embed"

	"go.mau.fi/util/dbutil"
)

// VersionTable is the child version table that tracks Table's upgrades.
const VersionTable = "xmpp_version"

//go:embed *.sql
var upgrades embed.FS

// Table is the upgrade table of our own schema.
var Table = dbutil.BuildUpgradeTable().WithFS(upgrades).Finish()

// Child returns the bridge database wrapped with our upgrade table; calling
// Upgrade on it creates or updates our tables.
func Child(db *dbutil.Database, log dbutil.DatabaseLogger) *dbutil.Database {
	return db.Child(VersionTable, Table, log)
}

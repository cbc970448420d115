package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2/matrix/mxmain"
)

// ExitForeignDatabase is mxmain's exit code for database errors; the bridge keeps it so the
// documented meaning of 15 ("database problem") holds.
const ExitForeignDatabase = 15

// ErrForeignDatabase is wrapped by the errors of CheckOwnDatabase.
var ErrForeignDatabase = errors.New("deploy: the database belongs to another program")

// ForeignDatabaseError says which program the configured database belongs to.
type ForeignDatabaseError struct {
	// Program is "Synapse", "Dendrite" or the owner another mautrix-style program recorded.
	Program string
	// Evidence is the table (or owner record) that gave it away.
	Evidence string
	// Homeserver is true for a homeserver's own database: the worst case.
	Homeserver bool
}

func (e *ForeignDatabaseError) Error() string {
	return fmt.Sprintf("the database in database.uri belongs to %s (found %s)", e.Program, e.Evidence)
}

func (e *ForeignDatabaseError) Unwrap() error { return ErrForeignDatabase }

// Help is the text an admin needs: why the bridge refuses and exactly what to do.
func (e *ForeignDatabaseError) Help() string {
	var b strings.Builder
	fmt.Fprintf(&b, "The database in database.uri belongs to %s (found %s).\n", e.Program, e.Evidence)
	if e.Homeserver {
		b.WriteString("The bridge must not share the homeserver's database: its tables would mix with the\n" +
			"homeserver's, and an upgrade of either could break the other or your Matrix server.\n")
	} else {
		b.WriteString("Two programs cannot share one database: their schemas and upgrades would collide.\n")
	}
	b.WriteString("Give the bridge a database of its own. On the same PostgreSQL server, as the postgres user:\n" +
		"    createuser --pwprompt xmpp_bridge\n" +
		"    createdb --owner=xmpp_bridge --encoding=UTF8 --locale=C --template=template0 xmpp_bridge\n" +
		"then set in config.yaml:\n" +
		"    database:\n" +
		"        type: postgres\n" +
		"        uri: postgres://xmpp_bridge:PASSWORD@HOST/xmpp_bridge?sslmode=disable\n" +
		"(or use SQLite: type: sqlite3-fk-wal, uri: file:/data/xmpp-bridge.db?_txlock=immediate)\n" +
		"and start the bridge again. Nothing was written to the database.\n" +
		"See docs/troubleshooting.md, \"The database contains foreign tables\".")
	return b.String()
}

// foreignTables are tables only a homeserver creates; one is enough to tell.
var foreignTables = []struct{ table, program string }{
	{"state_groups_state", "Synapse"},
	{"event_json", "Synapse"},
	{"roomserver_rooms", "Dendrite"},
	{"syncapi_output_room_events", "Dendrite"},
}

// CheckOwnDatabase returns a *ForeignDatabaseError when db belongs to a homeserver or to another
// program that recorded itself in dbutil's database_owner table. It only reads, and it honours
// mxmain's --ignore-foreign-tables (db.IgnoreForeignTables) for the homeserver check.
func CheckOwnDatabase(ctx context.Context, db *dbutil.Database) error {
	if !db.IgnoreForeignTables {
		for _, ft := range foreignTables {
			exists, err := db.TableExists(ctx, ft.table)
			if err != nil {
				return fmt.Errorf("failed to check for table %s: %w", ft.table, err)
			}
			if exists {
				return &ForeignDatabaseError{Program: ft.program, Evidence: "table " + ft.table, Homeserver: true}
			}
		}
	}
	if db.Owner == "" {
		return nil
	}
	exists, err := db.TableExists(ctx, "database_owner")
	if err != nil {
		return fmt.Errorf("failed to check for table database_owner: %w", err)
	} else if !exists {
		return nil
	}
	var owner string
	err = db.QueryRow(ctx, "SELECT owner FROM database_owner WHERE key=0").Scan(&owner)
	if err != nil {
		// No owner row yet, or an unexpected layout: leave the verdict to dbutil's own check.
		return nil
	}
	if owner != db.Owner {
		return &ForeignDatabaseError{Program: owner, Evidence: "database_owner " + owner}
	}
	return nil
}

// MustUseOwnDatabase runs CheckOwnDatabase on the bridge's database and, on a foreign database,
// prints the help to stderr and the log and exits with ExitForeignDatabase. Call it from
// mxmain's PostInit, which runs after the database is opened and before any schema upgrade
// (and before bridgev2's BackgroundCtx exists: main gives ctx).
func MustUseOwnDatabase(ctx context.Context, br *mxmain.BridgeMain) {
	err := CheckOwnDatabase(ctx, br.DB)
	var fe *ForeignDatabaseError
	switch {
	case errors.As(err, &fe):
		br.Log.WithLevel(zerolog.FatalLevel).Str("program", fe.Program).Str("evidence", fe.Evidence).
			Msg("Refusing to start: " + fe.Error() + ". The bridge needs a database of its own")
		_, _ = fmt.Fprintln(os.Stderr, "\n"+fe.Help())
		os.Exit(ExitForeignDatabase)
	case err != nil:
		// Connection problems surface in bridgev2's upgrade right after with their own message.
		br.Log.Warn().Err(err).Msg("Could not check whether the database is the bridge's own")
	}
}

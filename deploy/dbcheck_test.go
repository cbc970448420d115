package deploy

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"go.mau.fi/util/dbutil"
	_ "go.mau.fi/util/dbutil/litestream"
)

func openSQLite(t *testing.T, owner string, ignoreForeign bool, setup ...string) *dbutil.Database {
	t.Helper()
	uri := "file:" + filepath.Join(t.TempDir(), "db.sqlite") + "?_txlock=immediate"
	db, err := dbutil.NewWithDialect(uri, "sqlite3-fk-wal")
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	db.Owner = owner
	db.IgnoreForeignTables = ignoreForeign
	for _, q := range setup {
		if _, err := db.Exec(context.Background(), q); err != nil {
			t.Fatalf("setup %q: %v", q, err)
		}
	}
	return db
}

func TestCheckOwnDatabase(t *testing.T) {
	const us = "megabridge/xmpp-bridge"
	ownerTable := "CREATE TABLE database_owner (key INTEGER PRIMARY KEY DEFAULT 0, owner TEXT NOT NULL)"
	tests := []struct {
		name          string
		ignoreForeign bool
		setup         []string
		wantProgram   string // "" = accepted
		wantHS        bool
	}{
		{name: "empty database", wantProgram: ""},
		{name: "our own database", setup: []string{ownerTable, "INSERT INTO database_owner VALUES (0, '" + us + "')"}},
		{name: "owner table without row", setup: []string{ownerTable}},
		{name: "synapse", setup: []string{"CREATE TABLE state_groups_state (x INTEGER)"}, wantProgram: "Synapse", wantHS: true},
		{name: "synapse events only", setup: []string{"CREATE TABLE event_json (x INTEGER)"}, wantProgram: "Synapse", wantHS: true},
		{name: "dendrite", setup: []string{"CREATE TABLE roomserver_rooms (x INTEGER)"}, wantProgram: "Dendrite", wantHS: true},
		{name: "synapse ignored by flag", ignoreForeign: true, setup: []string{"CREATE TABLE state_groups_state (x INTEGER)"}},
		{
			name:        "another bridge",
			setup:       []string{ownerTable, "INSERT INTO database_owner VALUES (0, 'megabridge/mautrix-signal')"},
			wantProgram: "megabridge/mautrix-signal",
		},
		{
			name:          "another bridge not ignored by flag",
			ignoreForeign: true,
			setup:         []string{ownerTable, "INSERT INTO database_owner VALUES (0, 'megabridge/mautrix-signal')"},
			wantProgram:   "megabridge/mautrix-signal",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openSQLite(t, us, tt.ignoreForeign, tt.setup...)
			err := CheckOwnDatabase(context.Background(), db)
			if tt.wantProgram == "" {
				if err != nil {
					t.Fatalf("CheckOwnDatabase = %v, want nil", err)
				}
				return
			}
			var fe *ForeignDatabaseError
			if !errors.As(err, &fe) || !errors.Is(err, ErrForeignDatabase) {
				t.Fatalf("CheckOwnDatabase = %v, want ForeignDatabaseError", err)
			}
			if fe.Program != tt.wantProgram || fe.Homeserver != tt.wantHS {
				t.Fatalf("got program %q homeserver=%v, want %q %v", fe.Program, fe.Homeserver, tt.wantProgram, tt.wantHS)
			}
			help := fe.Help()
			for _, want := range []string{tt.wantProgram, "createdb", "database.uri", "uri: postgres://", "Nothing was written"} {
				if !strings.Contains(help, want) {
					t.Errorf("help lacks %q:\n%s", want, help)
				}
			}
		})
	}
}

func TestCheckOwnDatabaseWritesNothing(t *testing.T) {
	db := openSQLite(t, "megabridge/xmpp-bridge", false, "CREATE TABLE state_groups_state (x INTEGER)")
	if err := CheckOwnDatabase(context.Background(), db); err == nil {
		t.Fatal("Synapse database accepted")
	}
	var n int
	if err := db.QueryRow(context.Background(), "SELECT COUNT(*) FROM sqlite_master WHERE type='table'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("database has %d tables after the check, want only the original one", n)
	}
}

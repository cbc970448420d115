package bridge

import (
	"context"
	"testing"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/id"
)

// TestTakeoverForgetsOMEMO: when a second Matrix user logs in with the same
// XMPP account, the first user's OMEMO device, trust and pending inbox are
// deleted, not inherited; the same user logging in again keeps them.
func TestTakeoverForgetsOMEMO(t *testing.T) {
	f := newInboxFixture(t)
	ctx := context.Background()
	in, err := f.receive(t, f.stanza(t, "t1", f.encrypt(t, f.bobXC, "secret for the first user")))
	wantBody(t, in, err, "secret for the first user")
	count := func(table string) int {
		t.Helper()
		var n int
		if err := f.db.QueryRow(ctx, `SELECT COUNT(*) FROM `+table+` WHERE account='alice@localhost'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	tables := []string{"omemo_identity", "omemo_session", "omemo_trust", "omemo_inbox"}
	for _, table := range tables {
		if count(table) == 0 {
			t.Fatalf("fixture has no %s row", table)
		}
	}
	existing := &bridgev2.UserLogin{UserLogin: &database.UserLogin{ID: "alice@localhost", UserMXID: "@first:hs"}, Client: f.c}

	if err := f.c.main.forgetOtherUsersLogin(ctx, existing, existing.ID, id.UserID("@first:hs")); err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		if count(table) == 0 {
			t.Errorf("%s deleted when the same user logged in again", table)
		}
	}

	if err := f.c.main.forgetOtherUsersLogin(ctx, existing, existing.ID, id.UserID("@second:hs")); err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		if n := count(table); n != 0 {
			t.Errorf("%d %s rows left for the second user to inherit", n, table)
		}
	}
	if f.c.omemoClient() != nil {
		t.Error("the taken-over client still holds its OMEMO device")
	}

	// State left by a login deleted without a remote logout is an orphan:
	// a new login of the account starts without it.
	if _, err := f.c.omemoManager(ctx); err != nil {
		t.Fatal(err)
	}
	if count("omemo_identity") == 0 {
		t.Fatal("no identity to orphan")
	}
	if err := f.c.main.forgetOtherUsersLogin(ctx, nil, existing.ID, id.UserID("@third:hs")); err != nil {
		t.Fatal(err)
	}
	if n := count("omemo_identity"); n != 0 {
		t.Errorf("orphaned OMEMO identity inherited by a new login (%d rows)", n)
	}
}

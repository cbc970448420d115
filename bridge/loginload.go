package bridge

import (
	"context"
	"fmt"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
)

// newLogin is user.NewLogin for a login that bridgev2 keeps its in-portal
// cache for. bridgev2 (v0.31.0) gives that cache to a UserLogin it loads
// from the database, not to one NewLogin makes: until the next restart such
// a login cost a user_portal query and an invitation check (a state-store
// read) for every event queued to a portal (UserLogin.MarkInPortal), every
// message from XMPP and every wait of the intake. A login that does not
// exist yet is stored first and loaded by bridgev2's loader, and NewLogin
// then updates that one (loading its client again, with the new metadata).
// A takeover (the account's login belongs to another Matrix user) still
// gets NewLogin's own UserLogin: it deletes the other one itself.
func newLogin(ctx context.Context, br *bridgev2.Bridge, user *bridgev2.User, data *database.UserLogin, params *bridgev2.NewLoginParams) (*bridgev2.UserLogin, error) {
	existing, err := br.GetExistingUserLoginByID(ctx, data.ID)
	if err != nil {
		return nil, fmt.Errorf("failed to look up existing login: %w", err)
	}
	if existing == nil {
		row := *data
		row.BridgeID, row.UserMXID = br.ID, user.MXID
		if err := br.DB.UserLogin.Insert(ctx, &row); err != nil {
			return nil, fmt.Errorf("failed to store the new login: %w", err)
		}
		if _, err := br.GetExistingUserLoginByID(ctx, data.ID); err != nil {
			return nil, fmt.Errorf("failed to load the new login: %w", err)
		}
	}
	return user.NewLogin(ctx, data, params)
}

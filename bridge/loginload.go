package bridge

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/status"
)

// newLogin is user.NewLogin for a login that bridgev2 keeps its in-portal
// cache for. bridgev2 (v0.31.0) gives that cache to a UserLogin it loads
// from the database, not to one NewLogin makes: until the next restart such
// a login cost a user_portal query and an invitation check (a state-store
// read) for every event queued to a portal (UserLogin.MarkInPortal), every
// message from XMPP and every wait of the intake. A login that does not
// exist yet is stored first and loaded by bridgev2's loader, and NewLogin
// then updates that one (loading its client again, with the new metadata).
//
// A takeover (the account's login belongs to another Matrix user, and
// params.DeleteOnConflict) deletes the other user's login first as NewLogin
// would, with the same bridge state (LOGIN_OVERRIDDEN_ANOTHER_USER) telling
// its owner, and then takes the same route. Should the store fail (another
// login of the account stored meanwhile), NewLogin does it all itself,
// takeover included, without the cache.
func newLogin(ctx context.Context, br *bridgev2.Bridge, user *bridgev2.User, data *database.UserLogin, params *bridgev2.NewLoginParams) (*bridgev2.UserLogin, error) {
	existing, err := br.GetExistingUserLoginByID(ctx, data.ID)
	if err != nil {
		return nil, fmt.Errorf("failed to look up existing login: %w", err)
	}
	if existing != nil && existing.UserMXID != user.MXID && params != nil && params.DeleteOnConflict {
		existing.Delete(ctx, status.BridgeState{StateEvent: status.StateLoggedOut, Reason: "LOGIN_OVERRIDDEN_ANOTHER_USER"},
			bridgev2.DeleteOpts{LogoutRemote: false})
		existing = nil
	}
	if existing == nil {
		row := *data
		row.BridgeID, row.UserMXID = br.ID, user.MXID
		if err := br.DB.UserLogin.Insert(ctx, &row); err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Str("login_id", string(data.ID)).Msg("Failed to store the new login first, leaving it to bridgev2")
			return user.NewLogin(ctx, data, params)
		}
		if _, err := br.GetExistingUserLoginByID(ctx, data.ID); err != nil {
			return nil, fmt.Errorf("failed to load the new login: %w", err)
		}
	}
	return user.NewLogin(ctx, data, params)
}

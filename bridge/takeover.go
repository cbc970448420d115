package bridge

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	"github.com/mxomemo/xmpp-bridge/omemostore"
)

// A login's ID is its XMPP account, so a second Matrix user who logs in
// with the same account takes the login over (bridgev2 deletes the first
// user's login without a remote logout). Our per-login state is keyed by
// that ID: without this, the new user would inherit the first user's OMEMO
// device, trust decisions and the plaintext still pending in the inbox.
// Logging in again as the same Matrix user keeps everything.

// takeover reports whether logging in as user replaces another Matrix
// user's login.
func takeover(existing *bridgev2.UserLogin, user id.UserID) bool {
	return existing != nil && existing.UserLogin != nil && existing.UserMXID != user
}

// forgetOtherUsersLogin deletes the OMEMO device (after removing it from the
// account's device lists, when it is connected) and the inbox of loginID
// when existing belongs to another Matrix user than user. Without an
// existing login, state left under loginID is an orphan (a login deleted
// without a remote logout) and is deleted too: a new login starts clean.
func (xc *Connector) forgetOtherUsersLogin(ctx context.Context, existing *bridgev2.UserLogin, loginID networkid.UserLoginID, user id.UserID) error {
	if existing == nil {
		return xc.deleteLoginState(ctx, loginID)
	}
	if !takeover(existing, user) {
		return nil
	}
	zerolog.Ctx(ctx).Info().Str("login_id", string(loginID)).Stringer("previous_user", existing.UserMXID).
		Msg("Login taken over by another Matrix user: deleting its OMEMO device and inbox")
	if c, ok := existing.Client.(*Client); ok && c != nil {
		c.omemoUnannounce(ctx)
		c.Disconnect()
		c.omemo.Forget()
	}
	return xc.deleteLoginState(ctx, loginID)
}

// deleteLoginState deletes every row of our tables that belongs to loginID.
func (xc *Connector) deleteLoginState(ctx context.Context, loginID networkid.UserLoginID) error {
	if err := omemostore.New(xc.DB, string(loginID)).Delete(ctx); err != nil {
		return fmt.Errorf("failed to delete OMEMO state: %w", err)
	}
	return deleteInbox(ctx, xc.DB, loginID)
}

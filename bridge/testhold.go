package bridge

import (
	"context"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// envHoldPresence names the test hook below; it is unset in production.
const envHoldPresence = "MXOMEMO_TEST_HOLD_PRESENCE"

// holdBeforePresenceMax bounds the hold.
const holdBeforePresenceMax = 30 * time.Second

// holdBeforePresence is a test hook (e2e/firstlogin_test.go): when the
// environment names a file that exists, the session waits before its
// initial presence until the file is removed (at most 30 s), and tells the
// test it is waiting by creating the file's name + ".held". It holds the
// session before carbons are enabled, so the window between the bind and
// the presence, where a message to the account reaches no client of the
// bridge (no carbon, and no offline copy while another resource is
// available), is wide enough for a test to send into.
func holdBeforePresence(ctx context.Context) {
	path := os.Getenv(envHoldPresence)
	if path == "" {
		return
	}
	if _, err := os.Stat(path); err != nil {
		return
	}
	log := zerolog.Ctx(ctx)
	log.Warn().Str("file", path).Msg("Test hook: holding the initial presence")
	if err := os.WriteFile(path+".held", nil, 0o600); err != nil {
		log.Err(err).Msg("Test hook: failed to signal the hold")
	}
	deadline := time.Now().Add(holdBeforePresenceMax)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err != nil {
			return
		}
		if !xmppclient.Sleep(ctx, 100*time.Millisecond) {
			return
		}
	}
}

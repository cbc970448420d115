package bridge

import (
	"context"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// Test hooks, unset in production: when the environment variable names a
// file that exists, the bridge waits at that point until the file is
// removed (at most testHoldMax), and tells the test it is waiting by
// creating the file's name + ".held".
const (
	// envHoldPresence holds a session before its initial presence.
	envHoldPresence = "MXOMEMO_TEST_HOLD_PRESENCE"
	// envHoldRejoin holds the rejoin after a connect after the bookmarks
	// are read, before the saved rooms are.
	envHoldRejoin = "MXOMEMO_TEST_HOLD_REJOIN"
)

// testHoldMax bounds a hold.
const testHoldMax = 30 * time.Second

// holdBeforePresence (e2e/firstlogin_test.go) holds the session before
// carbons are enabled, so the window between the bind and the presence,
// where a message to the account reaches no client of the bridge (no
// carbon, and no offline copy while another resource is available), is
// wide enough for a test to send into.
func holdBeforePresence(ctx context.Context) {
	testHold(ctx, envHoldPresence, "Test hook: holding the initial presence")
}

// holdBeforeRejoin (e2e/muc_joinrace_test.go) widens the window in which a
// `join` command races the rejoin after a connect.
func holdBeforeRejoin(ctx context.Context) {
	testHold(ctx, envHoldRejoin, "Test hook: holding the rejoin of the saved rooms")
}

func testHold(ctx context.Context, env, msg string) {
	path := os.Getenv(env)
	if path == "" {
		return
	}
	if _, err := os.Stat(path); err != nil {
		return
	}
	log := zerolog.Ctx(ctx)
	log.Warn().Str("file", path).Msg(msg)
	if err := os.WriteFile(path+".held", nil, 0o600); err != nil {
		log.Err(err).Msg("Test hook: failed to signal the hold")
	}
	deadline := time.Now().Add(testHoldMax)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err != nil {
			return
		}
		if !xmppclient.Sleep(ctx, 100*time.Millisecond) {
			return
		}
	}
}

package bridge

import (
	"testing"
	"time"

	"github.com/mxomemo/xmpp-bridge/xmpp/chatstates"
)

func TestTypingTimeout(t *testing.T) {
	if typingTimeoutFor(chatstates.Composing, false) != typingTimeout || typingTimeoutFor(chatstates.Composing, true) != 0 ||
		typingTimeoutFor(chatstates.Paused, false) != 0 || typingTimeout != 30*time.Second {
		t.Error("typing timeouts")
	}
}

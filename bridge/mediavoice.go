package bridge

import (
	"io"
	"os"

	"github.com/mxomemo/xmpp-bridge/msgconv"
)

// voiceLength is, for a file from XMPP just written to w (bridgev2's
// temporary file) whose first bytes are head, its length in milliseconds
// when it is a voice message (Ogg Opus, msgconv/voice.go: 0 when unknown),
// else -1.
func voiceLength(w io.Writer, head []byte) int {
	if !msgconv.OggOpus(head) {
		return -1
	}
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	st, err := f.Stat()
	if err != nil {
		return 0
	}
	return msgconv.OggOpusDuration(f, st.Size(), head)
}

package bridge

import (
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

func TestHistoryTranscript(t *testing.T) {
	bob := jid.MustParse("bob@example.org")
	at := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	entry := func(body string, fromMe bool) *historyEntry {
		return &historyEntry{In: &incoming{Message: xmppclient.Message{Body: body, FromMe: fromMe, Timestamp: at}}}
	}
	page := olderHistoryPage{More: true, Entries: []*historyEntry{
		entry("hello\nsecond line", false),
		entry("aesgcm://example.org/f.jpg#00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff0011223344556677", true),
	}}
	got := historyTranscript(page, bob)
	for _, want := range []string{
		"Older messages with bob@example.org from your XMPP archive (2, UTC):",
		"2026-12-01 09:30 bob@example.org: hello\n    second line",
		"2026-12-01 09:30 you: [encrypted file, open it in an XMPP client]",
		"`history` again",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("transcript lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "aesgcm://") || strings.Contains(got, "0011223344") {
		t.Errorf("the transcript shows an aesgcm link's key:\n%s", got)
	}
	if got := historyTranscript(olderHistoryPage{}, bob); !strings.HasPrefix(got, "No older messages") {
		t.Errorf("empty page: %q", got)
	}
	if got := historyTranscript(olderHistoryPage{Entries: page.Entries[:1]}, bob); !strings.Contains(got, "the beginning of the archive") {
		t.Errorf("last page: %q", got)
	}
}

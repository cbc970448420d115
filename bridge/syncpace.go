package bridge

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/matrix"
)

// botSyncInterval is the least time between the end of one /sync of the bridge bot's Megolm
// device and the start of the next.
//
// Why: the bot's /sync (bridgev2's crypto helper, for to-device room keys and device-list
// changes) filters out every room event, but the homeserver still answers it at once, empty,
// whenever anything happens in any room the bot is in, which is every portal. A profile of a
// message burst into a Megolm portal showed one /sync round trip (request, JSON, next-batch
// UPDATE) per bridged event, each way. Pacing the loop turns that per-event cost into at most
// one /sync per interval; nothing is lost, the next /sync returns what arrived meanwhile.
// The price is up to this much more latency for a new room key or device: a message that
// arrives before its key already waits for it (bridgev2 waits 3 s before it reports anything).
const botSyncInterval = 200 * time.Millisecond

// syncPacer delays the appservice client's /sync requests (only the crypto helper's bot
// device syncs through it) so that consecutive ones start at least min apart from the end of
// the previous one. Every other request passes straight through.
type syncPacer struct {
	next http.RoundTripper
	min  time.Duration

	mu   sync.Mutex
	last time.Time // when the previous /sync returned
}

var _ http.RoundTripper = (*syncPacer)(nil)

// installSyncPacer wraps the appservice HTTP client of br. Like installEncryptGuard, it must
// run after bridgev2/matrix's Init and before the crypto helper starts syncing.
func installSyncPacer(br *bridgev2.Bridge) {
	mc, ok := br.Matrix.(*matrix.Connector)
	if !ok || mc.AS == nil || mc.AS.HTTPClient == nil {
		return
	}
	if _, done := mc.AS.HTTPClient.Transport.(*syncPacer); done {
		return
	}
	next := mc.AS.HTTPClient.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	mc.AS.HTTPClient.Transport = &syncPacer{next: next, min: botSyncInterval}
}

// RoundTrip implements http.RoundTripper.
func (p *syncPacer) RoundTrip(req *http.Request) (*http.Response, error) {
	if !isSyncRequest(req) {
		return p.next.RoundTrip(req)
	}
	p.mu.Lock()
	wait := time.Until(p.last.Add(p.min))
	p.mu.Unlock()
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-req.Context().Done():
			t.Stop()
			return nil, fmt.Errorf("failed to wait for the next /sync: %w", req.Context().Err())
		}
	}
	resp, err := p.next.RoundTrip(req)
	p.mu.Lock()
	p.last = time.Now()
	p.mu.Unlock()
	return resp, err
}

// isSyncRequest matches GET /_matrix/client/{version}/sync.
func isSyncRequest(req *http.Request) bool {
	if req.Method != http.MethodGet || req.URL == nil {
		return false
	}
	rest, ok := strings.CutPrefix(req.URL.Path, "/_matrix/client/")
	if !ok {
		return false
	}
	version, endpoint, ok := strings.Cut(rest, "/")
	return ok && version != "" && !strings.Contains(version, "/") && endpoint == "sync"
}

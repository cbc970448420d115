package bridge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/matrix"
)

// Deterministic Matrix transaction ids for messages from XMPP.
//
// bridgev2 sends a remote message to Matrix first and stores its message row
// after; the send uses a random transaction id. If the process dies between
// the two, the message is handled again after the restart (the archive
// cursor has not passed it, or the OMEMO inbox still holds it) and a second
// Matrix event would appear. Homeservers answer a repeated transaction id on
// PUT /rooms/{room}/send/{type}/{txnId} with the event of the first request:
//
//   - Dendrite v0.15.2 (internal/transactions): in memory, keyed by access
//     token, transaction id and the path up to the event type; for an
//     appservice masquerading with ?user_id= the token is the appservice's,
//     so the key does not include the user. Entries live 30 to 60 minutes
//     and are lost when Dendrite restarts.
//   - Synapse (rest/client/transactions.py): in memory, keyed by the request
//     path (room, event type, transaction id) and the appservice id, also
//     not the user; 30 to 60 minutes, lost on restart. Its persistent
//     event_txn_id tables are only for requests with a device id, which
//     appservice requests without MSC3202 device masquerading do not have.
//
// bridgev2 has no hook for the transaction id, but it passes the remote
// event's context (simplevent's MutateContextFunc) down to the HTTP request.
// So the remote message's id goes into that context, and a wrapper around
// the appservice's HTTP transport replaces the random transaction id of that
// event's sends with one derived from the message id, the event type and
// the order of the send within the event (a message may have several
// parts). The id includes the sender, so two ghosts cannot collide under
// the appservice-wide keys above. A retry of the same request keeps the id
// it was given first.

type txnSeedKey struct{}

// txnSeed is the deterministic transaction id source of one remote event.
// It is armed by the event's own conversion (convertOnce): what bridgev2
// sends under the same context before that, such as the forward backfill
// of a portal the event creates, keeps its random ids; otherwise a
// backfilled message could take the id that the event's own send would
// reuse after a crash, and the homeserver would answer that send with the
// backfilled event.
type txnSeed struct {
	base  string
	armed atomic.Bool
	mu    sync.Mutex
	n     map[string]int    // sends so far per event type
	seen  map[string]string // original transaction id -> ours (retries)
}

// withTxnSeed makes the Matrix sends made under ctx use transaction ids
// derived from base (a bridgev2 message id, unique per sender).
func withTxnSeed(ctx context.Context, base string) context.Context {
	return context.WithValue(ctx, txnSeedKey{}, &txnSeed{base: base, n: map[string]int{}, seen: map[string]string{}})
}

// armTxnSeed arms the seed of ctx, if any: the event's own sends follow.
func armTxnSeed(ctx context.Context) {
	if seed, _ := ctx.Value(txnSeedKey{}).(*txnSeed); seed != nil {
		seed.armed.Store(true)
	}
}

func (s *txnSeed) txnID(eventType, orig string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.seen[orig]; ok {
		return id
	}
	i := s.n[eventType]
	s.n[eventType] = i + 1
	h := sha256.Sum256([]byte(s.base + "\x00" + eventType + "\x00" + strconv.Itoa(i)))
	id := "mxomemo." + base64.RawURLEncoding.EncodeToString(h[:18])
	s.seen[orig] = id
	return id
}

// txnTransport rewrites the transaction ids of sends made under a txnSeed.
type txnTransport struct{ next http.RoundTripper }

var _ http.RoundTripper = txnTransport{}

// RoundTrip implements http.RoundTripper.
func (t txnTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	seed, _ := req.Context().Value(txnSeedKey{}).(*txnSeed)
	if seed == nil || !seed.armed.Load() || req.Method != http.MethodPut {
		return t.next.RoundTrip(req)
	}
	path := req.URL.EscapedPath()
	parts := strings.Split(path, "/")
	// .../rooms/{roomId}/send/{eventType}/{txnId}
	n := len(parts)
	if n < 5 || parts[n-3] != "send" || parts[n-5] != "rooms" {
		return t.next.RoundTrip(req)
	}
	eventType, err := url.PathUnescape(parts[n-2])
	if err != nil {
		return t.next.RoundTrip(req)
	}
	orig := parts[n-1]
	parts[n-1] = seed.txnID(eventType, orig)
	zerolog.Ctx(req.Context()).Debug().Str("txn_id", parts[n-1]).Str("random_txn_id", orig).
		Msg("Using the remote message's Matrix transaction id")
	r := req.Clone(req.Context())
	u := *req.URL
	u.RawPath = strings.Join(parts, "/")
	u.Path, err = url.PathUnescape(u.RawPath)
	if err != nil {
		return t.next.RoundTrip(req)
	}
	r.URL = &u
	return t.sendRetrying(r)
}

// sendRetryMax bounds how long a message send is retried while the
// homeserver is unreachable or failing.
const sendRetryMax = 3 * time.Minute

// sendRetrying sends r, retrying connection errors and server errors with
// backoff for up to sendRetryMax. The transaction id is the message's own,
// so a retry of a send that did arrive returns the first event; and while
// it retries, the portal's later messages wait, which keeps the chat's
// order (bridgev2 moves on to the next message once a send has failed).
func (t txnTransport) sendRetrying(r *http.Request) (*http.Response, error) {
	start, delay := time.Now(), time.Second
	for {
		resp, err := t.next.RoundTrip(r)
		retry := homeserverAway(resp, err) || (time.Since(start) < forbiddenRetryMax && shutdownForbidden(resp))
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		if !retry {
			return resp, err
		}
		if r.GetBody == nil || time.Since(start)+delay > sendRetryMax || r.Context().Err() != nil {
			// Logged so that a message sent later by the catch-up (out of
			// its chat's order) can be traced to its cause.
			zerolog.Ctx(r.Context()).Warn().Err(err).Int("status", status).Dur("tried_for", time.Since(start)).
				Msg("Message send to the homeserver failed, giving up")
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
		zerolog.Ctx(r.Context()).Warn().Err(err).Int("status", status).Dur("retry_in", delay).
			Msg("Message send to the homeserver failed, retrying")
		select {
		case <-r.Context().Done():
			return nil, r.Context().Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 15*time.Second)
		body, berr := r.GetBody()
		if berr != nil {
			return nil, fmt.Errorf("failed to rewind the request body: %w", berr)
		}
		r = r.Clone(r.Context())
		r.Body = body
	}
}

// homeserverAway says whether a send's outcome means the homeserver is
// away or overloaded rather than refusing the message: any transport error
// (connection refused or reset, EOF, a timeout: the homeserver stopping or
// starting), a server error (500 while it shuts down, 502/503/504 from a
// proxy in front of it) or 429 (rate limited: the same request succeeds
// later). Other 4xx answers would fail again the same way.
func homeserverAway(resp *http.Response, err error) bool {
	if err != nil {
		return true
	}
	return resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests
}

// forbiddenRetryMax bounds the retries of shutdownForbidden answers: long
// enough to get past a homeserver's shutdown (the next attempts then meet a
// refused connection, which is retried as the homeserver away), short
// enough that a ghost that really is not registered does not hold its
// portal's queue for the full sendRetryMax.
var forbiddenRetryMax = 30 * time.Second

// shutdownForbidden says whether resp is Dendrite's answer to a masquerading
// appservice request whose user lookup failed: Dendrite v0.15.2
// (userapi/internal/user_api.go) turns any database error of that lookup,
// including the "context canceled" of every request in flight while it
// shuts down, into 403 M_FORBIDDEN "appservice has not registered this
// user". Seen in TestDeliveryFaults/homeserver_restart: not retried, the
// message was left to the catch-up and reached Matrix after the chat's
// later messages. The body is read and put back for the caller.
func shutdownForbidden(resp *http.Response) bool {
	if resp == nil || resp.StatusCode != http.StatusForbidden || resp.Body == nil {
		return false
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return false
	}
	var merr struct {
		ErrCode string `json:"errcode"`
		Err     string `json:"error"`
	}
	return json.Unmarshal(body, &merr) == nil && merr.ErrCode == "M_FORBIDDEN" &&
		strings.Contains(merr.Err, "appservice has not registered this user")
}

// installTxnTransport wraps the appservice's HTTP transport (shared by the
// bot and every ghost's client).
func installTxnTransport(br *bridgev2.Bridge) {
	mc, ok := br.Matrix.(*matrix.Connector)
	if !ok || mc.AS == nil || mc.AS.HTTPClient == nil {
		br.Log.Warn().Msg("Cannot set deterministic Matrix transaction ids: not the appservice connector")
		return
	}
	if _, done := mc.AS.HTTPClient.Transport.(txnTransport); done {
		return
	}
	next := mc.AS.HTTPClient.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	mc.AS.HTTPClient.Transport = txnTransport{next: next}
}

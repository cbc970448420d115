package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// errPlaintextRefused is returned instead of sending a message in the clear into an encrypted
// room when the bridge has no way to encrypt it.
var errPlaintextRefused = errors.New("refusing to send a plaintext message into an encrypted room")

// encryptGuard is the appservice's HTTP transport, wrapped: every m.room.message or m.sticker
// the bridge sends in the clear into an encrypted room is Megolm-encrypted on its way out.
//
// Why here: bridgev2's ASIntent encrypts what goes through it, but bridgev2/matrix also sends
// through the raw appservice bot intent — the message status notices ("⚠️ Your message was not
// bridged: …", both for connector errors and for events the bot could not decrypt) and their
// edits — and those reached encrypted rooms in plaintext. The HTTP client is the one place all
// of those pass, so the guard sits there rather than beside each caller.
type encryptGuard struct {
	next      http.RoundTripper
	encrypted func(ctx context.Context, room id.RoomID) (bool, error)
	// encrypt is nil when the bridge has no end-to-bridge encryption.
	encrypt func(ctx context.Context, room id.RoomID, evtType event.Type, content *event.Content) error
}

var _ http.RoundTripper = (*encryptGuard)(nil)

// installEncryptGuard wraps the appservice HTTP client of mc. It must run after bridgev2/matrix's
// Init (which creates the client) and before anything is sent.
func installEncryptGuard(br *bridgev2.Bridge) {
	mc, ok := br.Matrix.(*matrix.Connector)
	if !ok || mc.AS == nil || mc.AS.HTTPClient == nil {
		return
	}
	if _, done := mc.AS.HTTPClient.Transport.(*encryptGuard); done {
		return
	}
	next := mc.AS.HTTPClient.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	g := &encryptGuard{
		next: next,
		encrypted: func(ctx context.Context, room id.RoomID) (bool, error) {
			return mc.StateStore.IsEncrypted(ctx, room)
		},
	}
	g.encrypt = func(ctx context.Context, room id.RoomID, evtType event.Type, content *event.Content) error {
		// mc.Crypto is set in Init but only usable once encryption is enabled in the config.
		if mc.Crypto == nil {
			return errPlaintextRefused
		}
		return mc.Crypto.Encrypt(ctx, room, evtType, content)
	}
	mc.AS.HTTPClient.Transport = g
}

// RoundTrip implements http.RoundTripper.
func (g *encryptGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	room, evtType, txn, ok := plainSendPath(req)
	if !ok || req.Body == nil {
		return g.next.RoundTrip(req)
	}
	ctx := req.Context()
	enc, err := g.encrypted(ctx, room)
	if err != nil {
		return nil, fmt.Errorf("failed to check whether %s is encrypted: %w", room, err)
	}
	if !enc {
		return g.next.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("failed to read the event to encrypt: %w", err)
	}
	content := &event.Content{VeryRaw: json.RawMessage(body)}
	if err := g.encrypt(ctx, room, evtType, content); err != nil {
		zerolog.Ctx(ctx).Err(err).Stringer("room_id", room).Str("event_type", evtType.Type).
			Msg("Refused to send a plaintext message into an encrypted room")
		return nil, fmt.Errorf("failed to encrypt %s for %s: %w", evtType.Type, room, err)
	}
	encBody, err := json.Marshal(content)
	if err != nil {
		return nil, fmt.Errorf("failed to marshal the encrypted event: %w", err)
	}
	out := req.Clone(ctx)
	u := *req.URL
	prefix := u.EscapedPath()
	prefix = prefix[:strings.LastIndex(prefix, "/send/")]
	u.RawPath = prefix + "/send/" + url.PathEscape(event.EventEncrypted.Type) + "/" + url.PathEscape(txn)
	u.Path, _ = url.PathUnescape(u.RawPath)
	out.URL = &u
	out.Body = io.NopCloser(bytes.NewReader(encBody))
	out.ContentLength = int64(len(encBody))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(encBody)), nil }
	zerolog.Ctx(ctx).Debug().Stringer("room_id", room).Str("event_type", evtType.Type).
		Msg("Encrypted a bridge message that was on its way out in plaintext")
	return g.next.RoundTrip(out)
}

// plainSendPath matches PUT …/rooms/{room}/send/{type}/{txn} of the event types a user reads
// (m.room.message, m.sticker). Reactions and redactions stay as bridgev2 sends them: Matrix
// does not encrypt them.
func plainSendPath(req *http.Request) (room id.RoomID, evtType event.Type, txn string, ok bool) {
	if req.Method != http.MethodPut || req.URL == nil {
		return "", event.Type{}, "", false
	}
	parts := strings.Split(req.URL.EscapedPath(), "/")
	// …, "rooms", room, "send", type, txn
	n := len(parts)
	if n < 5 || parts[n-3] != "send" || parts[n-5] != "rooms" || !strings.HasPrefix(strings.Join(parts[:n-5], "/"), "/_matrix/client/") {
		return "", event.Type{}, "", false
	}
	r, err1 := url.PathUnescape(parts[n-4])
	t, err2 := url.PathUnescape(parts[n-2])
	x, err3 := url.PathUnescape(parts[n-1])
	if err1 != nil || err2 != nil || err3 != nil {
		return "", event.Type{}, "", false
	}
	switch t {
	case event.EventMessage.Type, event.EventSticker.Type:
		return id.RoomID(r), event.Type{Type: t, Class: event.MessageEventType}, x, true
	}
	return "", event.Type{}, "", false
}

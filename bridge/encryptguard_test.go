package bridge

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

type recordTransport struct{ got []*http.Request }

func (r *recordTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r.got = append(r.got, req)
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(`{"event_id":"$x"}`)), Request: req}, nil
}

func TestEncryptGuard(t *testing.T) {
	const enc, plain = "!enc:localhost", "!plain:localhost"
	cases := []struct {
		name, method, path string
		nilCrypto          bool
		wantPath           string // "" when the request must fail
		wantEncrypted      bool
	}{
		{"notice into encrypted room", "PUT", "/_matrix/client/v3/rooms/%21enc:localhost/send/m.room.message/txn1", false,
			"/_matrix/client/v3/rooms/%21enc:localhost/send/m.room.encrypted/txn1", true},
		{"sticker into encrypted room", "PUT", "/_matrix/client/v3/rooms/%21enc:localhost/send/m.sticker/t2", false,
			"/_matrix/client/v3/rooms/%21enc:localhost/send/m.room.encrypted/t2", true},
		{"plaintext room untouched", "PUT", "/_matrix/client/v3/rooms/%21plain:localhost/send/m.room.message/t3", false,
			"/_matrix/client/v3/rooms/%21plain:localhost/send/m.room.message/t3", false},
		{"already encrypted untouched", "PUT", "/_matrix/client/v3/rooms/%21enc:localhost/send/m.room.encrypted/t4", false,
			"/_matrix/client/v3/rooms/%21enc:localhost/send/m.room.encrypted/t4", false},
		{"reaction untouched", "PUT", "/_matrix/client/v3/rooms/%21enc:localhost/send/m.reaction/t5", false,
			"/_matrix/client/v3/rooms/%21enc:localhost/send/m.reaction/t5", false},
		{"state untouched", "PUT", "/_matrix/client/v3/rooms/%21enc:localhost/state/m.room.name/", false,
			"/_matrix/client/v3/rooms/%21enc:localhost/state/m.room.name/", false},
		{"no crypto: refused, never plaintext", "PUT", "/_matrix/client/v3/rooms/%21enc:localhost/send/m.room.message/t6", true,
			"", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recordTransport{}
			g := &encryptGuard{
				next: rec,
				encrypted: func(_ context.Context, room id.RoomID) (bool, error) {
					return room == enc, nil
				},
				encrypt: func(_ context.Context, room id.RoomID, evtType event.Type, content *event.Content) error {
					if tc.nilCrypto {
						return errPlaintextRefused
					}
					raw, _ := json.Marshal(content)
					content.VeryRaw = nil
					content.Parsed = map[string]string{"algorithm": string(id.AlgorithmMegolmV1), "ciphertext": "ct:" + base64.StdEncoding.EncodeToString(raw)}
					return nil
				},
			}
			_ = plain
			body := `{"msgtype":"m.notice","body":"⚠️ Your message was not bridged"}`
			req, err := http.NewRequestWithContext(context.Background(), tc.method, "http://hs"+tc.path+"?user_id=%40bot%3Alocalhost", bytes.NewBufferString(body))
			if err != nil {
				t.Fatal(err)
			}
			_, err = g.RoundTrip(req)
			if tc.wantPath == "" {
				if err == nil || len(rec.got) != 0 {
					t.Fatalf("sent %d requests, err %v; want refusal", len(rec.got), err)
				}
				return
			}
			if err != nil || len(rec.got) != 1 {
				t.Fatalf("err %v, %d requests", err, len(rec.got))
			}
			out := rec.got[0]
			if out.URL.EscapedPath() != tc.wantPath || out.URL.Query().Get("user_id") != "@bot:localhost" {
				t.Errorf("sent to %s?%s, want %s", out.URL.EscapedPath(), out.URL.RawQuery, tc.wantPath)
			}
			sent, _ := io.ReadAll(out.Body)
			if has := strings.Contains(string(sent), "not bridged") && !strings.Contains(string(sent), "ct:"); has == tc.wantEncrypted {
				t.Errorf("body %s: plaintext=%v, want encrypted=%v", sent, has, tc.wantEncrypted)
			}
			if tc.wantEncrypted && out.ContentLength != int64(len(sent)) {
				t.Errorf("content length %d for %d bytes", out.ContentLength, len(sent))
			}
		})
	}
}

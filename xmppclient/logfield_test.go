package xmppclient

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/rs/zerolog"
)

func TestLogField(t *testing.T) {
	tests := []struct {
		name string
		log  func(l zerolog.Logger)
		want map[string]any
	}{
		{"the field beside the parent's context and the event's own", func(l zerolog.Logger) {
			f := LogField(l, "component", "xmpp")
			f.Info().Str("x", "1").Msg("hello")
		}, map[string]any{"login": "a", "component": "xmpp", "x": "1", "message": "hello", "level": "info"}},
		{"two fields", func(l zerolog.Logger) {
			f := LogField(LogField(l, "component", "xmpp"), "resource", "r1")
			f.Info().Msg("m")
		}, map[string]any{"login": "a", "component": "xmpp", "resource": "r1", "message": "m", "level": "info"}},
		{"kept by a logger derived with With and through a context", func(l zerolog.Logger) {
			child := LogField(l, "resource", "r1").With().Str("room", "r@muc").Logger()
			zerolog.Ctx(child.WithContext(context.Background())).Warn().Msg("m")
		}, map[string]any{"login": "a", "resource": "r1", "room": "r@muc", "message": "m", "level": "warn"}},
		{"the parent is left as it was", func(l zerolog.Logger) {
			_ = LogField(l, "component", "xmpp")
			l.Info().Msg("m")
		}, map[string]any{"login": "a", "message": "m", "level": "info"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.log(zerolog.New(&buf).With().Str("login", "a").Logger())
			var got map[string]any
			if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatalf("%q: %v", buf.String(), err)
			}
			if len(got) != len(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v (line %s)", k, got[k], v, buf.String())
				}
			}
		})
	}
}

package xmppclient

import "github.com/rs/zerolog"

// LogField is l with the string field key=value on every event, like
// l.With().Str(key, value).Logger() but without its copy of l's context:
// zerolog gives every With a 500-byte buffer, which a logger kept for a
// login's whole connection (its component, its session's resource) holds
// per login. The field is written after the event's own fields.
func LogField(l zerolog.Logger, key, value string) zerolog.Logger {
	return l.Hook(fieldHook{key: key, value: value})
}

type fieldHook struct{ key, value string }

var _ zerolog.Hook = fieldHook{}

func (h fieldHook) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Str(h.key, h.value)
}

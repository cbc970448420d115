package pubsub

import (
	"encoding/xml"
	"errors"
	"fmt"

	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/xmltok"
)

// ErrMalformed is returned for responses and notifications that do not
// follow XEP-0060.
var ErrMalformed = errors.New("pubsub: malformed pubsub element")

// Sentinel errors for the pubsub#errors conditions callers act on.
// Compare with errors.Is; an *Error matches the one for its Condition.
var (
	ErrPreconditionNotMet = &Error{Condition: "precondition-not-met"}
	ErrInvalidOptions     = &Error{Condition: "invalid-options"}
	ErrUnsupported        = &Error{Condition: "unsupported"}
	ErrItemForbidden      = &Error{Condition: "item-forbidden"}
)

// Error is an error response to a pubsub request. It keeps the
// application-specific pubsub#errors condition that stanza.Error drops.
type Error struct {
	// Stanza is the RFC 6120 error (type and defined condition).
	Stanza stanza.Error

	// Condition is the local name of the pubsub#errors condition
	// (e.g. "precondition-not-met"), or "" if there was none.
	Condition string

	// Feature is the feature attribute of an <unsupported/> condition.
	Feature string
}

// Error implements error.
func (e *Error) Error() string {
	msg := "pubsub: " + string(e.Stanza.Condition)
	if e.Condition != "" {
		msg += " (" + e.Condition
		if e.Feature != "" {
			msg += " " + e.Feature
		}
		msg += ")"
	}
	if text := e.Stanza.Error(); text != string(e.Stanza.Condition) {
		msg += ": " + text
	}
	return msg
}

// Is reports whether target is a sentinel *Error with the same pubsub
// condition.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Condition != "" && t.Condition == e.Condition
}

// Unwrap returns the stanza error, so errors.Is(err, stanza.Error{…}) works.
func (e *Error) Unwrap() error {
	return e.Stanza
}

// parseError is an iqresp.ErrorFunc.
func parseError(toks []xml.Token) error {
	var (
		e   Error
		raw struct {
			Conds []struct {
				XMLName xml.Name
				Feature string `xml:"feature,attr"`
			} `xml:",any"`
		}
	)
	if err := xml.NewTokenDecoder(xmltok.Replay(toks)).Decode(&e.Stanza); err != nil {
		return fmt.Errorf("%w: bad error element: %w", ErrMalformed, err)
	}
	if err := xml.NewTokenDecoder(xmltok.Replay(toks)).Decode(&raw); err != nil {
		return fmt.Errorf("%w: bad error element: %w", ErrMalformed, err)
	}
	for _, c := range raw.Conds {
		if c.XMLName.Space == NSErrors {
			e.Condition, e.Feature = c.XMLName.Local, c.Feature
			break
		}
	}
	return &e
}

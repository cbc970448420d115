// Package iqresp reads IQ responses for the stanza packages: it checks the
// response type, turns error responses into errors and hands back the
// payload children as buffered tokens.
package iqresp

import (
	"encoding/xml"
	"errors"
	"fmt"

	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/children"
	"github.com/mxomemo/xmpp-bridge/xmpp/xmltok"
)

// ErrNotResult is returned for a response that is neither result nor error.
var ErrNotResult = errors.New("iqresp: response is not an IQ result")

// ErrorFunc turns the tokens of an <error/> element into an error.
type ErrorFunc func(errTokens []xml.Token) error

// StanzaError is the default ErrorFunc: it returns a stanza.Error.
func StanzaError(toks []xml.Token) error {
	var se stanza.Error
	if err := xml.NewTokenDecoder(xmltok.Replay(toks)).Decode(&se); err != nil {
		return fmt.Errorf("failed to decode error response: %w", err)
	}
	return se
}

// Read reads one IQ from r. For a result it returns the payload children
// (normally zero or one); for an error it returns onError's error (StanzaError
// if nil).
func Read(r xml.TokenReader, onError ErrorFunc) ([][]xml.Token, error) {
	var kids [][]xml.Token
	start, err := children.Each(r, func(d *xml.Decoder, start xml.StartElement) (bool, error) {
		toks, err := xmltok.Capture(d, start)
		kids = append(kids, toks)
		return true, err
	})
	if err != nil {
		return nil, fmt.Errorf("failed to read IQ response: %w", err)
	}
	if start.Name.Local != "iq" {
		return nil, fmt.Errorf("%w: got <%s/>", ErrNotResult, start.Name.Local)
	}
	typ := ""
	for _, a := range start.Attr {
		if a.Name.Space == "" && a.Name.Local == "type" {
			typ = a.Value
		}
	}
	switch typ {
	case string(stanza.ResultIQ):
		return kids, nil
	case string(stanza.ErrorIQ):
		if onError == nil {
			onError = StanzaError
		}
		for _, k := range kids {
			if s, ok := k[0].(xml.StartElement); ok && s.Name.Local == "error" {
				return nil, onError(k)
			}
		}
		return nil, stanza.Error{Type: stanza.Cancel, Condition: stanza.UndefinedCondition}
	}
	return nil, fmt.Errorf("%w: type %q", ErrNotResult, typ)
}

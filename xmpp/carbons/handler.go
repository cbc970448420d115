package carbons

import (
	"encoding/xml"
	"errors"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"
)

// Handle returns a mux option that calls f for every valid carbon addressed
// to account. Forged and malformed carbons are passed to onDrop (if not nil)
// and otherwise dropped, so that they never reach f.
func Handle(account jid.JID, f func(Carbon) error, onDrop func(stanza.Message, error)) mux.Option {
	h := handler{account: account, f: f, onDrop: onDrop}
	return func(m *mux.ServeMux) {
		for _, local := range []string{"received", "sent"} {
			name := xml.Name{Space: NS, Local: local}
			mux.Message(stanza.NormalMessage, name, h)(m)
			mux.Message(stanza.ChatMessage, name, h)(m)
		}
	}
}

type handler struct {
	account jid.JID
	f       func(Carbon) error
	onDrop  func(stanza.Message, error)
}

// HandleMessage implements mux.MessageHandler.
func (h handler) HandleMessage(msg stanza.Message, r xmlstream.TokenReadEncoder) error {
	c, err := Parse(r, h.account)
	switch {
	case errors.Is(err, ErrForged), errors.Is(err, ErrMalformed):
		if h.onDrop != nil {
			h.onDrop(msg, err)
		}
		return nil
	case err != nil:
		return err
	}
	return h.f(c)
}

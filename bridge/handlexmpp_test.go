package bridge

import (
	"encoding/xml"
	"strings"
	"testing"

	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
	"mellium.im/xmpp/jid"
)

// tokens reads one stanza for the tests; the parsing of 1:1 messages is
// tested in xmppclient (message_test.go).
func tokens(t *testing.T, s string) *stanzabuf.Stanza {
	t.Helper()
	st, err := stanzabuf.Read(xml.NewDecoder(strings.NewReader(s)))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

const (
	nsC = ` xmlns="jabber:client"`
)

// parseIncoming reads one message stanza received by account
// (xmppclient.ParseMessage) into the connector's queue item.
func parseIncoming(st *stanzabuf.Stanza, account jid.JID) (*incoming, error) {
	m, err := xmppclient.ParseMessage(st, account)
	if err != nil {
		return nil, err
	}
	return &incoming{Message: *m}, nil
}

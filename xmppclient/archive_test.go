package xmppclient

import (
	"errors"
	"testing"
)

func archiveResult(queryID, inner string) string {
	return `<message xmlns="jabber:client" to="alice@example.org/bridge" id="x">` +
		`<result xmlns="urn:xmpp:mam:2" queryid="` + queryID + `" id="arch-7">` +
		`<forwarded xmlns="urn:xmpp:forward:0"><delay xmlns="urn:xmpp:delay" stamp="2026-11-20T08:00:00Z"/>` +
		inner + `</forwarded></result></message>`
}

func TestUnwrapArchived(t *testing.T) {
	st := tokens(t, archiveResult("q1", `<message xmlns="jabber:client" from="bob@example.org/phone" to="alice@example.org" type="chat" id="m1"><body>old</body></message>`))
	a, err := UnwrapArchived(st)
	if err != nil {
		t.Fatal(err)
	}
	if a.QueryID != "q1" || a.ArchiveID != "arch-7" || a.Stamp.IsZero() || a.Message.Start().Name.Local != "message" {
		t.Fatalf("got %+v", a)
	}
	if _, err := UnwrapArchived(tokens(t, `<message xmlns="jabber:client" from="bob@example.org" type="chat"><body>hi</body></message>`)); !errors.Is(err, ErrNotArchived) {
		t.Fatalf("plain message: err = %v", err)
	}
	if _, err := UnwrapArchived(tokens(t, `<message xmlns="jabber:client"><result xmlns="urn:xmpp:mam:2" queryid="q1" id="a"/></message>`)); err == nil || errors.Is(err, ErrNotArchived) {
		t.Fatalf("empty result: err = %v", err)
	}
}

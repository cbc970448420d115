package bridge

import (
	"errors"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

func archiveResult(from, queryID, inner string) string {
	f := ""
	if from != "" {
		f = ` from="` + from + `"`
	}
	return `<message xmlns="jabber:client"` + f + ` to="alice@example.org/bridge" id="x">` +
		`<result xmlns="urn:xmpp:mam:2" queryid="` + queryID + `" id="arch-7">` +
		`<forwarded xmlns="urn:xmpp:forward:0"><delay xmlns="urn:xmpp:delay" stamp="2026-11-20T08:00:00Z"/>` +
		inner + `</forwarded></result></message>`
}

func TestClassifyArchived(t *testing.T) {
	c := &Client{account: jid.MustParse("alice@example.org")}
	catchUp := c.mam.Add(xmppclient.QueryCatchUp)
	seed := c.mam.Add(xmppclient.QuerySeed)
	fromBob := `<message xmlns="jabber:client" from="bob@example.org/phone" to="alice@example.org" type="chat" id="m1"><body>old</body></message>`
	fromMe := `<message xmlns="jabber:client" from="alice@example.org/laptop" to="bob@example.org" type="chat" id="m2"><body>mine</body></message>`
	for _, tc := range []struct {
		name    string
		xml     string
		wantErr error
		fromMe  bool
		id      string
	}{
		{"from contact", archiveResult("", catchUp, fromBob), nil, false, "m1"},
		{"from own other client", archiveResult("", catchUp, fromMe), nil, true, "m2"},
		{"own bare from", archiveResult("alice@example.org", catchUp, fromBob), nil, false, "m1"},
		{"seed query is not bridged", archiveResult("", seed, fromBob), xmppclient.ErrIgnored, false, ""},
		{"unknown query", archiveResult("", "guessed", fromBob), errUnknownQuery, false, ""},
		{"injected by a contact", archiveResult("mallory@example.org/x", catchUp, fromBob), errForgedArchived, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inb := xmppclient.Classify(tokens(t, tc.xml))
			c.mam.Resolve(&inb) // as the Router does
			in, err := c.classify(inb)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !in.Archived || in.FromMe != tc.fromMe || in.XMPPID != tc.id || in.Peer.String() != "bob@example.org" ||
				in.StanzaID != "arch-7" || in.Timestamp.IsZero() {
				t.Fatalf("got %+v", in)
			}
		})
	}
}

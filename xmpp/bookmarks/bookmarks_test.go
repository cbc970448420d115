package bookmarks

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
)

func encode(t *testing.T, r xml.TokenReader) string {
	t.Helper()
	var b bytes.Buffer
	e := xml.NewEncoder(&b)
	if _, err := xmlstream.Copy(e, r); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func item(t *testing.T, id, payload string) pubsub.Item {
	t.Helper()
	it, err := pubsub.NewItem(id, xml.NewDecoder(strings.NewReader(payload)))
	if err != nil {
		t.Fatal(err)
	}
	return it
}

func TestParseItem(t *testing.T) {
	tests := []struct {
		name, id, payload string
		want              Conference
		wantErr           bool
		reencoded         []string
	}{
		{
			name: "full", id: "play@conference.example.org",
			payload: `<conference xmlns="urn:xmpp:bookmarks:1" name="The Play" autojoin="true"><nick>JC</nick>` +
				`<extensions><state xmlns="http://myclient.example/bookmark/state" minimized="true"/></extensions></conference>`,
			want:      Conference{JID: jid.MustParse("play@conference.example.org"), Name: "The Play", Autojoin: true, Nick: "JC"},
			reencoded: []string{`autojoin="true"`, `<nick xmlns="urn:xmpp:bookmarks:1">JC</nick>`, `minimized="true"`, `xmlns="http://myclient.example/bookmark/state"`},
		},
		{
			name: "autojoin 1, password", id: "a@b",
			payload: `<conference xmlns="urn:xmpp:bookmarks:1" autojoin="1"><password>pw</password></conference>`,
			want:    Conference{JID: jid.MustParse("a@b"), Autojoin: true, Password: "pw"},
		},
		{
			name: "no autojoin", id: "a@b",
			payload: `<conference xmlns="urn:xmpp:bookmarks:1"/>`,
			want:    Conference{JID: jid.MustParse("a@b")},
		},
		{name: "id not a room", id: "example.org", payload: `<conference xmlns="urn:xmpp:bookmarks:1"/>`, wantErr: true},
		{name: "id with resource", id: "a@b/c", payload: `<conference xmlns="urn:xmpp:bookmarks:1"/>`, wantErr: true},
		{name: "wrong payload", id: "a@b", payload: `<conference xmlns="storage:bookmarks"/>`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseItem(item(t, tc.id, tc.payload))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if !got.JID.Equal(tc.want.JID) || got.Name != tc.want.Name || got.Autojoin != tc.want.Autojoin ||
				got.Nick != tc.want.Nick || got.Password != tc.want.Password {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			out := encode(t, got.TokenReader())
			for _, w := range tc.reencoded {
				if !strings.Contains(out, w) {
					t.Errorf("re-encoded %s lacks %s", out, w)
				}
			}
			again, err := ParseItem(item(t, tc.id, out))
			if err != nil || again.Autojoin != got.Autojoin || again.Nick != got.Nick || len(again.extra) != len(got.extra) {
				t.Errorf("round trip: %+v, %v", again, err)
			}
		})
	}
}

func TestLegacyStorage(t *testing.T) {
	resp := `<iq xmlns="jabber:client" type="result" id="1"><query xmlns="jabber:iq:private"><storage xmlns="storage:bookmarks">` +
		`<conference name="Council" autojoin="true" jid="council@conference.example.org"><nick>Puck</nick><password>secret</password></conference>` +
		`<conference jid="not a jid"/>` +
		`<url name="Site" url="https://example.org/"/></storage></query></iq>`
	st, err := ParseLegacyResult(xml.NewDecoder(strings.NewReader(resp)))
	if err != nil {
		t.Fatal(err)
	}
	c, ok := st.Get(jid.MustParse("council@conference.example.org"))
	if !ok || !c.Autojoin || c.Nick != "Puck" || c.Password != "secret" || c.Name != "Council" || len(st.Conferences) != 1 {
		t.Fatalf("storage %+v", st)
	}
	c.Autojoin = false
	st.Set(c)
	st.Set(Conference{JID: jid.MustParse("new@conference.example.org"), Autojoin: true})
	out := encode(t, StoreLegacyIQ(&st))
	for _, w := range []string{`<url xmlns="storage:bookmarks" name="Site" url="https://example.org/">`, `jid="new@conference.example.org" autojoin="true"`,
		`jid="council@conference.example.org" name="Council">`, `<query xmlns="jabber:iq:private">`} {
		if !strings.Contains(out, w) {
			t.Errorf("stored %s lacks %s", out, w)
		}
	}
	empty, err := ParseLegacyResult(xml.NewDecoder(strings.NewReader(`<iq xmlns="jabber:client" type="result" id="1"><query xmlns="jabber:iq:private"><storage xmlns="storage:bookmarks"/></query></iq>`)))
	if err != nil || len(empty.Conferences) != 0 {
		t.Errorf("empty storage: %+v, %v", empty, err)
	}
	if _, err := ParseLegacyResult(xml.NewDecoder(strings.NewReader(`<iq xmlns="jabber:client" type="error" id="1"><error type="cancel"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`))); err == nil {
		t.Error("an error answer parsed")
	}
}

package caps_test

import (
	"context"
	"encoding/xml"
	"errors"
	"strings"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/caps"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/fakesession"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/xmltest"
)

const bridgeNode = "https://github.com/mxomemo/xmpp-bridge"

var bridgeInfo = caps.Info{
	Identities: []caps.Identity{{Category: "client", Type: "bot", Name: "xmpp-bridge"}},
	Features: []string{
		"http://jabber.org/protocol/caps", "http://jabber.org/protocol/disco#info",
		"eu.siacs.conversations.axolotl.devicelist", caps.Notify("eu.siacs.conversations.axolotl.devicelist"),
		"urn:xmpp:omemo:2:devices", caps.Notify("urn:xmpp:omemo:2:devices"),
	},
}

// ask sends a disco#info query through the handler and returns the answer.
func ask(t *testing.T, m *mux.ServeMux, node string) string {
	t.Helper()
	q := `<iq xmlns="jabber:client" type="get" id="q1" from="juliet@capulet.example/balcony" to="romeo@montague.example/bridge">` +
		`<query xmlns="http://jabber.org/protocol/disco#info" node="` + node + `"/></iq>`
	d := xml.NewDecoder(strings.NewReader(q))
	tok, _ := d.Token()
	start := tok.(xml.StartElement)
	var out strings.Builder
	e := xml.NewEncoder(&out)
	if err := m.HandleXMPP(struct {
		xml.TokenReader
		xmlstream.Encoder
	}{d, e}, &start); err != nil {
		t.Fatalf("handler failed: %v", err)
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestHandle(t *testing.T) {
	c, err := bridgeInfo.Caps(bridgeNode)
	if err != nil {
		t.Fatal(err)
	}
	m := mux.New(stanza.NSClient, caps.Handle(bridgeNode, bridgeInfo))

	for _, node := range []string{bridgeNode + "#" + c.Ver, ""} {
		resp := ask(t, m, node)
		info, err := caps.ParseInfo(xmltest.Reader(resp))
		if err != nil {
			t.Fatalf("bad answer for %q: %v\n%s", node, err, resp)
		}
		// What we answer must hash to what we advertise.
		if err := info.Verify(c.Hash, c.Ver); err != nil {
			t.Errorf("answer for %q does not verify: %v", node, err)
		}
		if !info.HasFeature(caps.Notify("urn:xmpp:omemo:2:devices")) {
			t.Error("notify feature missing")
		}
		wantNode := ""
		if node != "" {
			wantNode = ` node="` + node + `"`
		}
		if !strings.Contains(resp, `<query xmlns="http://jabber.org/protocol/disco#info"`+wantNode+`>`) ||
			!strings.Contains(resp, `type="result"`) || !strings.Contains(resp, `to="juliet@capulet.example/balcony"`) {
			t.Errorf("wrong answer: %s", resp)
		}
	}

	resp := ask(t, m, bridgeNode+"#stale")
	_, err = caps.ParseInfo(xmltest.Reader(resp))
	if !errors.Is(err, stanza.Error{Condition: stanza.ItemNotFound}) {
		t.Errorf("stale ver: want item-not-found, got %v (%s)", err, resp)
	}
}

func TestFetch(t *testing.T) {
	c, _ := complexInfo.Caps("http://psi-im.org")
	var answer string
	s, srv := fakesession.New(t, jid.MustParse("romeo@montague.example/home"), func(string) string { return answer })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	b, err := xml.Marshal(complexInfo)
	if err != nil {
		t.Fatal(err)
	}
	answer = `<iq xmlns="jabber:client" type="result" id="{{id}}">` + string(b) + `</iq>`
	info, err := caps.Fetch(ctx, s, jid.MustParse("juliet@capulet.example/psi"), c)
	if err != nil {
		t.Fatalf("fetch failed: %v", err)
	}
	if len(info.Forms) != 1 || len(info.Identities) != 2 {
		t.Errorf("wrong info: %+v", info)
	}
	if req := srv.Requests()[0]; !strings.Contains(req, `node="http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w="`) {
		t.Errorf("wrong query: %s", req)
	}

	// A peer whose answer does not match its advertised hash is not cached.
	b, _ = xml.Marshal(simple)
	answer = `<iq xmlns="jabber:client" type="result" id="{{id}}">` + string(b) + `</iq>`
	if _, err := caps.Fetch(ctx, s, jid.MustParse("juliet@capulet.example/psi"), c); !errors.Is(err, caps.ErrVerMismatch) {
		t.Errorf("want ErrVerMismatch, got %v", err)
	}
}

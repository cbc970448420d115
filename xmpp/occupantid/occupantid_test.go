package occupantid_test

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"github.com/mxomemo/xmpp-bridge/xmpp/occupantid"
	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, xml string
		id        string
		ok        bool
		err       error
	}{
		{"stamped", `<message><body>x</body><occupant-id xmlns='urn:xmpp:occupant-id:0' id='dd72603deec90a38ba552f7c68cbcc61bca202cd'/></message>`,
			"dd72603deec90a38ba552f7c68cbcc61bca202cd", true, nil},
		{"none", `<message><body>x</body></message>`, "", false, nil},
		{"other namespace", `<message><occupant-id xmlns='urn:xmpp:occupant-id:1' id='a'/></message>`, "", false, nil},
		{"nested is not ours", `<message><x><occupant-id xmlns='urn:xmpp:occupant-id:0' id='a'/></x></message>`, "", false, nil},
		{"same twice", `<message><occupant-id xmlns='urn:xmpp:occupant-id:0' id='a'/><occupant-id xmlns='urn:xmpp:occupant-id:0' id='a'/></message>`, "a", true, nil},
		{"two ids", `<message><occupant-id xmlns='urn:xmpp:occupant-id:0' id='a'/><occupant-id xmlns='urn:xmpp:occupant-id:0' id='b'/></message>`, "", false, occupantid.ErrTwoIDs},
		{"no id", `<message><occupant-id xmlns='urn:xmpp:occupant-id:0'/></message>`, "", false, occupantid.ErrMissingID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, ok, err := occupantid.Parse(xml.NewDecoder(strings.NewReader(tc.xml)))
			if id != tc.id || ok != tc.ok || !errors.Is(err, tc.err) {
				t.Errorf("Parse = %q, %v, %v; want %q, %v, %v", id, ok, err, tc.id, tc.ok, tc.err)
			}
			st, err := stanzabuf.Read(xml.NewDecoder(strings.NewReader(tc.xml)))
			if err != nil {
				t.Fatal(err)
			}
			id, ok, err = occupantid.FromElements(st.Children(occupantid.NS, "occupant-id"))
			if id != tc.id || ok != tc.ok || !errors.Is(err, tc.err) {
				t.Errorf("FromElements = %q, %v, %v; want %q, %v, %v", id, ok, err, tc.id, tc.ok, tc.err)
			}
		})
	}
}

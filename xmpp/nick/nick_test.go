package nick

import (
	"encoding/xml"
	"strings"
	"testing"
)

func TestFromStanza(t *testing.T) {
	cases := []struct{ name, xml, want string }{
		{"message nick", `<message from="carol@localhost/x"><body>hi</body><nick xmlns="http://jabber.org/protocol/nick">Carol C.</nick></message>`, "Carol C."},
		{"subscribe nick", `<presence type="subscribe"><nick xmlns="http://jabber.org/protocol/nick"> Carol </nick></presence>`, "Carol"},
		{"none", `<message><body>hi</body></message>`, ""},
		{"nested is not ours", `<message><x><nick xmlns="http://jabber.org/protocol/nick">Mallory</nick></x></message>`, ""},
		{"other namespace", `<message><nick xmlns="urn:other">Mallory</nick></message>`, ""},
		{"control characters dropped", "<message><nick xmlns=\"http://jabber.org/protocol/nick\">Ca\trol</nick></message>", "Carol"},
		{"too long cut", `<message><nick xmlns="http://jabber.org/protocol/nick">` + strings.Repeat("a", 300) + `</nick></message>`, strings.Repeat("a", MaxLen)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := FromStanza(xml.NewDecoder(strings.NewReader(tc.xml))); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseVCard(t *testing.T) {
	cases := []struct{ name, xml, want string }{
		{"nickname first", `<iq type="result"><vCard xmlns="vcard-temp"><FN>Carol Carlsson</FN><NICKNAME>Caro</NICKNAME></vCard></iq>`, "Caro"},
		{"full name", `<iq type="result"><vCard xmlns="vcard-temp"><FN>Carol Carlsson</FN></vCard></iq>`, "Carol Carlsson"},
		{"empty vCard", `<iq type="result"><vCard xmlns="vcard-temp"/></iq>`, ""},
		{"item-not-found", `<iq type="error"><error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseVCard(xml.NewDecoder(strings.NewReader(tc.xml)))
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

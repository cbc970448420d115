package sm

import (
	"encoding/xml"
	"reflect"
	"testing"
)

// sameTag compares start tags, no attributes being no attributes however
// the slice was made.
func sameTag(a, b xml.StartElement) bool {
	if len(a.Attr) == 0 && len(b.Attr) == 0 {
		a.Attr, b.Attr = nil, nil
	}
	return reflect.DeepEqual(a, b)
}

// parseTagPlain reads what the decoder reads, and leaves it what it cannot.
func TestParseTagPlain(t *testing.T) {
	for _, tc := range []struct {
		tag   string
		empty bool
		plain bool // read without the decoder
	}{
		{`<message to='bob@example.org' id='mxb-1' type='chat'>`, false, true},
		{`<r xmlns='urn:xmpp:sm:3'/>`, true, true},
		{`<a xmlns="urn:xmpp:sm:3" h="42" />`, true, true},
		{`<stream:features>`, false, true},
		{`<enabled xmlns='urn:xmpp:sm:3' id='x' resume='true' max='300' location='[::1]:5222'/>`, true, true},
		{`<iq type='get'  id='1'>`, false, true},
		{`<presence/>`, true, true},
		{`<message id='a>b' to="c/>d">`, false, true},
		{`<message xml:lang='en' xmlns:stream='http://etherx.jabber.org/streams'>`, false, true},
		{`<message to='a&amp;b'>`, false, false},
		{`<message to='a
b'>`, false, false},
		{`<message id='1'to='2'>`, false, false},
		{`<a:b:c x='1'>`, false, false},
		{`<message id=1>`, false, false},
		{`<message id>`, false, false},
	} {
		got, ok := parseTagPlain([]byte(tc.tag), tc.empty)
		if ok != tc.plain {
			t.Errorf("%s: read without the decoder %v, want %v", tc.tag, ok, tc.plain)
		}
		if ok {
			if want := parseTagDecoder([]byte(tc.tag), tc.empty); !sameTag(got, want) {
				t.Errorf("%s: %#v, the decoder reads %#v", tc.tag, got, want)
			}
		}
		if got, want := parseTag([]byte(tc.tag), tc.empty), parseTagDecoder([]byte(tc.tag), tc.empty); !sameTag(got, want) {
			t.Errorf("%s: parseTag %#v, the decoder reads %#v", tc.tag, got, want)
		}
	}
}

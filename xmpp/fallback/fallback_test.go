package fallback_test

import (
	"encoding/xml"
	"errors"
	"reflect"
	"testing"

	"mellium.im/xmlstream"

	"github.com/mxomemo/xmpp-bridge/xmpp/fallback"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/xmltest"
)

var (
	_ xml.Marshaler       = fallback.Fallback{}
	_ xml.Unmarshaler     = (*fallback.Fallback)(nil)
	_ xmlstream.Marshaler = fallback.Fallback{}
)

const nsReply = "urn:xmpp:reply:0"

func TestEncoding(t *testing.T) {
	xmltest.Run(t, []xmltest.Case{
		0: {
			Value: &fallback.Fallback{For: nsReply, Body: []fallback.Range{{Start: 0, End: 33}}},
			XML:   `<fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:reply:0"><body start="0" end="33"></body></fallback>`,
		},
		1: {
			Value: &fallback.Fallback{For: "urn:xmpp:message-retract:1"},
			XML:   `<fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:message-retract:1"></fallback>`,
		},
		2: {
			Value:     &fallback.Fallback{For: "x"},
			XML:       `<fallback xmlns="urn:xmpp:fallback:0" for="x"><body/></fallback>`,
			NoMarshal: true,
		},
		3: {
			Value:     &fallback.Fallback{For: "x", Subject: []fallback.Range{{Start: 1, End: 2}}},
			XML:       `<fallback xmlns="urn:xmpp:fallback:0" for="x"><subject start="1" end="2"/><other/></fallback>`,
			NoMarshal: true,
		},
		4: {Value: &fallback.Fallback{}, XML: `<fallback xmlns="urn:xmpp:fallback:0"/>`, Err: fallback.ErrMissingFor},
		5: {Value: &fallback.Fallback{}, XML: `<fallback xmlns="urn:xmpp:fallback:0" for="x"><body start="3"/></fallback>`, Err: fallback.ErrBadRange},
		6: {Value: &fallback.Fallback{}, XML: `<fallback xmlns="urn:xmpp:fallback:0" for="x"><body start="5" end="3"/></fallback>`, Err: fallback.ErrBadRange},
		7: {Value: &fallback.Fallback{}, XML: `<fallback xmlns="urn:xmpp:fallback:0" for="x"><body start="-1" end="3"/></fallback>`, Err: fallback.ErrBadRange},
		8: {Value: &fallback.Fallback{}, XML: `<fallback xmlns="urn:xmpp:fallback:0" for="x"><body start="a" end="3"/></fallback>`, Err: fallback.ErrBadRange},
	})
}

func TestParseAndStrip(t *testing.T) {
	// From XEP-0461 §3, with a multi-byte character in the quote so that
	// byte offsets would cut in the wrong place.
	const body = "> Anna wrote:\n> We should bake a cake ✓\nGreat idea!"
	const in = `<message xmlns="jabber:client"><body>` + body + `</body>` +
		`<reply xmlns="urn:xmpp:reply:0" to="anna@example.com/laptop" id="message-id1"/>` +
		`<fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:reply:0"><body start="0" end="40"/></fallback></message>`
	fbs, err := fallback.Parse(xmltest.Reader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []fallback.Fallback{{For: nsReply, Body: []fallback.Range{{Start: 0, End: 40}}}}
	if !reflect.DeepEqual(fbs, want) {
		t.Fatalf("wrong fallbacks: %+v", fbs)
	}
	for _, tc := range []struct {
		name string
		body string
		fbs  []fallback.Fallback
		ns   []string
		want string
		err  error
	}{
		{name: "reply", body: body, fbs: fbs, ns: []string{nsReply}, want: "Great idea!"},
		{name: "not understood", body: body, fbs: fbs, ns: []string{"urn:other"}, want: body},
		{name: "whole", body: "retracted", fbs: []fallback.Fallback{{For: "r"}}, ns: []string{"r"}, want: ""},
		{name: "two ranges", body: "abcdef", fbs: []fallback.Fallback{{For: "a", Body: []fallback.Range{{4, 5}, {0, 2}}}}, ns: []string{"a"}, want: "cdf"},
		{name: "empty range", body: "abc", fbs: []fallback.Fallback{{For: "a", Body: []fallback.Range{{1, 1}}}}, ns: []string{"a"}, want: "abc"},
		{name: "out of bounds", body: "abc", fbs: []fallback.Fallback{{For: "a", Body: []fallback.Range{{0, 4}}}}, ns: []string{"a"}, err: fallback.ErrBadRange},
		{name: "overlap", body: "abcdef", fbs: []fallback.Fallback{{For: "a", Body: []fallback.Range{{0, 3}, {2, 4}}}}, ns: []string{"a"}, err: fallback.ErrBadRange},
		{name: "subject only", body: "abc", fbs: []fallback.Fallback{{For: "a", Subject: []fallback.Range{{0, 1}}}}, ns: []string{"a"}, want: "abc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := fallback.Strip(tc.body, tc.fbs, tc.ns...)
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("wrong error: want=%v, got=%v", tc.err, err)
			}
			if got != tc.want {
				t.Errorf("want=%q, got=%q", tc.want, got)
			}
		})
	}
}

package caps_test

import (
	"encoding/xml"
	"errors"
	"reflect"
	"testing"

	"mellium.im/xmlstream"

	"github.com/mxomemo/xmpp-bridge/xmpp/caps"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/xmltest"
)

var (
	_ xml.Marshaler       = caps.Caps{}
	_ xml.Unmarshaler     = (*caps.Caps)(nil)
	_ xmlstream.Marshaler = caps.Caps{}
	_ xml.Marshaler       = caps.Info{}
	_ xml.Unmarshaler     = (*caps.Info)(nil)
)

// The examples of XEP-0115 §5.2 and §5.3.
var (
	simple = caps.Info{
		Identities: []caps.Identity{{Category: "client", Type: "pc", Name: "Exodus 0.9.1"}},
		Features: []string{"http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items",
			"http://jabber.org/protocol/muc", "http://jabber.org/protocol/caps"},
	}
	complexInfo = caps.Info{
		Identities: []caps.Identity{
			{Category: "client", Type: "pc", Lang: "en", Name: "Psi 0.11"},
			{Category: "client", Type: "pc", Lang: "el", Name: "Ψ 0.11"},
		},
		Features: []string{"http://jabber.org/protocol/caps", "http://jabber.org/protocol/disco#info",
			"http://jabber.org/protocol/disco#items", "http://jabber.org/protocol/muc"},
		Forms: []caps.Form{{
			FormType: "urn:xmpp:dataforms:softwareinfo",
			Fields: []caps.Field{
				{Var: "ip_version", Values: []string{"ipv6", "ipv4"}},
				{Var: "os", Values: []string{"Mac"}},
				{Var: "os_version", Values: []string{"10.5.1"}},
				{Var: "software", Values: []string{"Psi"}},
				{Var: "software_version", Values: []string{"0.11"}},
			},
		}},
	}
)

func TestVer(t *testing.T) {
	for _, tc := range []struct {
		name string
		info caps.Info
		ver  string
		err  error
	}{
		{name: "simple", info: simple, ver: "QgayPKawpkPSDYmwT/WM94uAlu0="},
		{name: "complex", info: complexInfo, ver: "q07IKJEyjvHSyhy//CH0CxmKi8w="},
		{name: "duplicate feature", info: caps.Info{Features: []string{"a", "b", "a"}}, err: caps.ErrDuplicate},
		{name: "duplicate identity", info: caps.Info{Identities: []caps.Identity{{Category: "c", Type: "t"}, {Category: "c", Type: "t"}}}, err: caps.ErrDuplicate},
		{name: "duplicate form", info: caps.Info{Forms: []caps.Form{{FormType: "x"}, {FormType: "x"}}}, err: caps.ErrDuplicate},
		{name: "form without type", info: caps.Info{Forms: []caps.Form{{}}}, err: caps.ErrBadForm},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := deepCopy(tc.info)
			ver, err := tc.info.Ver()
			if !errors.Is(err, tc.err) {
				t.Fatalf("wrong error: want=%v, got=%v", tc.err, err)
			}
			if ver != tc.ver {
				t.Errorf("wrong ver: want=%s, got=%s", tc.ver, ver)
			}
			if !reflect.DeepEqual(before, tc.info) {
				t.Error("Ver modified its receiver")
			}
			// Computing twice gives the same answer (mellium's does not).
			if again, _ := tc.info.Ver(); again != ver {
				t.Errorf("second Ver differs: %s", again)
			}
		})
	}
}

func deepCopy(i caps.Info) caps.Info {
	out := caps.Info{
		Identities: append([]caps.Identity(nil), i.Identities...),
		Features:   append([]string(nil), i.Features...),
	}
	for _, f := range i.Forms {
		nf := caps.Form{FormType: f.FormType}
		for _, fl := range f.Fields {
			nf.Fields = append(nf.Fields, caps.Field{Var: fl.Var, Values: append([]string(nil), fl.Values...)})
		}
		out.Forms = append(out.Forms, nf)
	}
	return out
}

func TestIdentityOrderIsFieldWise(t *testing.T) {
	// Sorting "category/type/..." strings would put "a-x" before "a"
	// ('-' < '/'); XEP-0115 sorts by category first.
	a := caps.Info{Identities: []caps.Identity{{Category: "a-x", Type: "t"}, {Category: "a", Type: "t"}}}
	b := caps.Info{Identities: []caps.Identity{{Category: "a", Type: "t"}, {Category: "a-x", Type: "t"}}}
	va, _ := a.Ver()
	vb, _ := b.Ver()
	if va != vb {
		t.Fatal("ver depends on identity order")
	}
	// sha1("a/t//<a-x/t//<"); the string-sorted order would give
	// IgELMl2tnS6IjO+TdFL91goOgPA=.
	if va != "Nsd0tPwIBO0R/+rOgswOvlGYlGI=" {
		t.Errorf("wrong ver %s", va)
	}
}

func TestNotify(t *testing.T) {
	if got := caps.Notify("urn:xmpp:omemo:2:devices"); got != "urn:xmpp:omemo:2:devices+notify" {
		t.Errorf("wrong notify feature %s", got)
	}
}

func TestEncoding(t *testing.T) {
	xmltest.Run(t, []xmltest.Case{
		0: {
			Value: &caps.Caps{Hash: "sha-1", Node: "https://github.com/mxomemo/xmpp-bridge", Ver: "QgayPKawpkPSDYmwT/WM94uAlu0="},
			XML:   `<c xmlns="http://jabber.org/protocol/caps" hash="sha-1" node="https://github.com/mxomemo/xmpp-bridge" ver="QgayPKawpkPSDYmwT/WM94uAlu0="></c>`,
		},
		1: {
			Value: &caps.Caps{},
			XML:   `<c xmlns="http://jabber.org/protocol/caps" node="n" ver="v" ext="legacy"/>`,
			Err:   caps.ErrMalformed,
		},
		2: {
			Value: &complexInfo,
			XML: `<query xmlns="http://jabber.org/protocol/disco#info">` +
				`<identity category="client" type="pc" name="Psi 0.11" xml:lang="en"></identity>` +
				`<identity category="client" type="pc" name="Ψ 0.11" xml:lang="el"></identity>` +
				`<feature var="http://jabber.org/protocol/caps"></feature><feature var="http://jabber.org/protocol/disco#info"></feature>` +
				`<feature var="http://jabber.org/protocol/disco#items"></feature><feature var="http://jabber.org/protocol/muc"></feature>` +
				`<x xmlns="jabber:x:data" type="result"><field var="FORM_TYPE" type="hidden"><value>urn:xmpp:dataforms:softwareinfo</value></field>` +
				`<field var="ip_version"><value>ipv6</value><value>ipv4</value></field><field var="os"><value>Mac</value></field>` +
				`<field var="os_version"><value>10.5.1</value></field><field var="software"><value>Psi</value></field>` +
				`<field var="software_version"><value>0.11</value></field></x></query>`,
		},
		3: {
			Value: &caps.Info{Features: []string{"a"}},
			XML: `<query xmlns="http://jabber.org/protocol/disco#info"><feature var="a"/>` +
				`<x xmlns="jabber:x:data" type="result"><field var="FORM_TYPE"><value>not-hidden</value></field></x>` +
				`<x xmlns="jabber:x:data" type="result"><field var="x"/></x></query>`,
			NoMarshal: true,
		},
		4: {
			Value: &caps.Info{},
			XML:   `<query xmlns="http://jabber.org/protocol/disco#info"><feature/></query>`,
			Err:   caps.ErrMalformed,
		},
		5: {
			Value: &caps.Info{},
			XML:   `<query xmlns="http://jabber.org/protocol/disco#items"/>`,
			Err:   caps.ErrMalformed,
		},
		6: {
			Value: &caps.Info{},
			XML: `<query xmlns="http://jabber.org/protocol/disco#info"><x xmlns="jabber:x:data" type="result">` +
				`<field var="FORM_TYPE" type="hidden"><value>a</value><value>b</value></field></x></query>`,
			Err: caps.ErrMalformed,
		},
	})
}

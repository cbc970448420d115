package pubsub_test

import (
	"encoding/xml"
	"errors"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/xmltest"
	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
)

var (
	_ xml.Marshaler       = pubsub.Form{}
	_ xml.Unmarshaler     = (*pubsub.Form)(nil)
	_ xmlstream.Marshaler = pubsub.Form{}
)

func devices() xml.TokenReader {
	return xmlstream.Wrap(
		xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: "device"}, Attr: []xml.Attr{{Name: xml.Name{Local: "id"}, Value: "1"}}}),
		xml.StartElement{Name: xml.Name{Space: "urn:xmpp:omemo:2", Local: "devices"}},
	)
}

func TestRequests(t *testing.T) {
	romeo := jid.MustParse("romeo@montague.example")
	for _, tc := range []struct {
		name string
		req  xml.TokenReader
		want string
	}{{
		name: "publish with options",
		req:  pubsub.PublishIQ(jid.JID{}, "urn:xmpp:omemo:2:devices", "current", devices(), pubsub.AccessModel(pubsub.AccessOpen), pubsub.MaxItems(32)),
		want: `<iq type="set"><pubsub xmlns="http://jabber.org/protocol/pubsub"><publish node="urn:xmpp:omemo:2:devices"><item id="current">` +
			`<devices xmlns="urn:xmpp:omemo:2"><device id="1"></device></devices></item></publish><publish-options>` +
			`<x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE" type="hidden"><value>http://jabber.org/protocol/pubsub#publish-options</value></field>` +
			`<field var="pubsub#access_model"><value>open</value></field><field var="pubsub#max_items"><value>32</value></field></x></publish-options></pubsub></iq>`,
	}, {
		name: "publish without id or options",
		req:  pubsub.PublishIQ(romeo, "n", "", nil),
		want: `<iq type="set" to="romeo@montague.example"><pubsub xmlns="http://jabber.org/protocol/pubsub"><publish node="n"><item></item></publish></pubsub></iq>`,
	}, {
		name: "items by id",
		req:  pubsub.ItemsIQ(romeo, "n", 5, "a", "b"),
		want: `<iq type="get" to="romeo@montague.example"><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="n"><item id="a"></item><item id="b"></item></items></pubsub></iq>`,
	}, {
		name: "newest items",
		req:  pubsub.ItemsIQ(romeo, "n", 5),
		want: `<iq type="get" to="romeo@montague.example"><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="n" max_items="5"></items></pubsub></iq>`,
	}, {
		name: "configure",
		req:  pubsub.ConfigureIQ(jid.JID{}, "n", pubsub.AccessModel(pubsub.AccessOpen), pubsub.PersistItems(true)),
		want: `<iq type="set"><pubsub xmlns="http://jabber.org/protocol/pubsub#owner"><configure node="n"><x xmlns="jabber:x:data" type="submit">` +
			`<field var="FORM_TYPE" type="hidden"><value>http://jabber.org/protocol/pubsub#node_config</value></field>` +
			`<field var="pubsub#access_model"><value>open</value></field><field var="pubsub#persist_items"><value>true</value></field></x></configure></pubsub></iq>`,
	}, {
		name: "get config",
		req:  pubsub.ConfigIQ(jid.JID{}, "n"),
		want: `<iq type="get"><pubsub xmlns="http://jabber.org/protocol/pubsub#owner"><configure node="n"></configure></pubsub></iq>`,
	}, {
		name: "retract",
		req:  pubsub.RetractIQ(jid.JID{}, "n", "i", true),
		want: `<iq type="set"><pubsub xmlns="http://jabber.org/protocol/pubsub"><retract node="n" notify="true"><item id="i"></item></retract></pubsub></iq>`,
	}, {
		name: "retract quietly",
		req:  pubsub.RetractIQ(jid.JID{}, "n", "i", false),
		want: `<iq type="set"><pubsub xmlns="http://jabber.org/protocol/pubsub"><retract node="n"><item id="i"></item></retract></pubsub></iq>`,
	}, {
		name: "subscribe",
		req:  pubsub.SubscribeIQ(jid.MustParse("bob@example.org"), "n", jid.MustParse("alice@example.org")),
		want: `<iq type="set" to="bob@example.org"><pubsub xmlns="http://jabber.org/protocol/pubsub"><subscribe node="n" jid="alice@example.org"></subscribe></pubsub></iq>`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := xmltest.Encode(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("wrong request:\nwant=%s\n got=%s", tc.want, got)
			}
		})
	}
}

const preconditionNotMet = `<iq xmlns="jabber:client" type="error" id="1"><error type="cancel">` +
	`<conflict xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><precondition-not-met xmlns="http://jabber.org/protocol/pubsub#errors"/>` +
	`<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">Field does not match: access_model</text></error></iq>`

func TestParsePublishResult(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		id   string
		err  error
	}{
		{name: "id", in: `<iq xmlns="jabber:client" type="result" id="1"><pubsub xmlns="http://jabber.org/protocol/pubsub"><publish node="n"><item id="ae890ac52d0df67ed7cfdf51b644e901"/></publish></pubsub></iq>`, id: "ae890ac52d0df67ed7cfdf51b644e901"},
		{name: "empty", in: `<iq xmlns="jabber:client" type="result" id="1"/>`},
		{name: "precondition", in: preconditionNotMet, err: pubsub.ErrPreconditionNotMet},
		{name: "precondition is a conflict", in: preconditionNotMet, err: stanza.Error{Condition: stanza.Conflict}},
		{name: "forbidden", in: `<iq xmlns="jabber:client" type="error"><error type="auth"><forbidden xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`, err: stanza.Error{Condition: stanza.Forbidden}},
		{name: "error without error element", in: `<iq xmlns="jabber:client" type="error"/>`, err: stanza.Error{Condition: stanza.UndefinedCondition}},
		{name: "not a result", in: `<iq xmlns="jabber:client" type="set"/>`, err: xmltest.ErrAny},
		{name: "wrong payload", in: `<iq xmlns="jabber:client" type="result"><query xmlns="jabber:iq:roster"/></iq>`, err: pubsub.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := pubsub.ParsePublishResult(xmltest.Reader(tc.in))
			checkErr(t, err, tc.err)
			if id != tc.id {
				t.Errorf("wrong id: want=%q, got=%q", tc.id, id)
			}
		})
	}
	_, err := pubsub.ParsePublishResult(xmltest.Reader(preconditionNotMet))
	var pe *pubsub.Error
	if !errors.As(err, &pe) || pe.Condition != "precondition-not-met" || pe.Stanza.Type != stanza.Cancel {
		t.Fatalf("wrong error value: %#v", err)
	}
	if errors.Is(err, pubsub.ErrInvalidOptions) {
		t.Error("precondition-not-met matched invalid-options")
	}
	if got := err.Error(); got != "pubsub: conflict (precondition-not-met): Field does not match: access_model" {
		t.Errorf("wrong message: %s", got)
	}
}

func checkErr(t *testing.T, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want == xmltest.ErrAny && err == nil:
		t.Fatal("expected an error")
	case want != nil && want != xmltest.ErrAny && !errors.Is(err, want):
		t.Fatalf("wrong error: want=%v, got=%v", want, err)
	}
}

func TestForm(t *testing.T) {
	xmltest.Run(t, []xmltest.Case{
		0: {
			Value: &pubsub.Form{Type: "submit", FormType: pubsub.NSPublishOptions, Fields: []pubsub.Field{{Var: "pubsub#access_model", Values: []string{"open"}}}},
			XML: `<x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE" type="hidden"><value>http://jabber.org/protocol/pubsub#publish-options</value></field>` +
				`<field var="pubsub#access_model"><value>open</value></field></x>`,
		},
		1: {
			Value: &pubsub.Form{Type: "form", Fields: []pubsub.Field{{Var: "a", Values: []string{"1", "2"}}, {Var: "b"}}},
			XML:   `<x xmlns="jabber:x:data" type="form"><field var="a"><value>1</value><value>2</value></field><field var="b"></field></x>`,
		},
		2: {
			Value: &pubsub.Form{},
			XML:   `<x xmlns="jabber:x:oob"/>`,
			Err:   pubsub.ErrMalformed,
		},
	})
}

type bundle struct {
	XMLName xml.Name `xml:"urn:xmpp:omemo:2 bundle"`
	SPK     string   `xml:"spk"`
}

func TestMarshalPayload(t *testing.T) {
	p, err := pubsub.Marshal(bundle{SPK: "a2V5"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := xmltest.Encode(pubsub.PublishIQ(jid.JID{}, "urn:xmpp:omemo:2:bundles", "31415", p))
	want := `<iq type="set"><pubsub xmlns="http://jabber.org/protocol/pubsub"><publish node="urn:xmpp:omemo:2:bundles"><item id="31415">` +
		`<bundle xmlns="urn:xmpp:omemo:2"><spk xmlns="urn:xmpp:omemo:2">a2V5</spk></bundle></item></publish></pubsub></iq>`
	if err != nil || got != want {
		t.Errorf("wrong publish:\nwant=%s\n got=%s (%v)", want, got, err)
	}
	if _, err := pubsub.Marshal(make(chan int)); err == nil {
		t.Error("unmarshalable value accepted")
	}
}

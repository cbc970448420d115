package httpupload_test

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/httpupload"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/fakesession"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/xmltest"
)

var (
	_ xml.Marshaler       = httpupload.Request{}
	_ xml.Unmarshaler     = (*httpupload.Request)(nil)
	_ xmlstream.Marshaler = httpupload.Request{}
	_ xml.Marshaler       = httpupload.Slot{}
	_ xml.Unmarshaler     = (*httpupload.Slot)(nil)
	_ xmlstream.Marshaler = httpupload.Slot{}
)

// The examples of XEP-0363 §4 and §5.
func TestEncoding(t *testing.T) {
	xmltest.Run(t, []xmltest.Case{
		{
			Value: &httpupload.Request{Filename: "très cool.jpg", Size: 23456, ContentType: "image/jpeg"},
			XML:   `<request xmlns="urn:xmpp:http:upload:0" filename="très cool.jpg" size="23456" content-type="image/jpeg"></request>`,
		},
		{
			Value: &httpupload.Request{Filename: "a.bin", Size: 1},
			XML:   `<request xmlns="urn:xmpp:http:upload:0" filename="a.bin" size="1"></request>`,
		},
		{Value: &httpupload.Request{}, XML: `<request xmlns="urn:xmpp:http:upload:0" filename="a" size="0"/>`, Err: httpupload.ErrBadRequest},
		{Value: &httpupload.Request{}, XML: `<request xmlns="urn:xmpp:http:upload:0" size="3"/>`, Err: httpupload.ErrBadRequest},
		{Value: &httpupload.Request{}, XML: `<request xmlns="urn:xmpp:http:upload:0" filename="a" size="x"/>`, Err: xmltest.ErrAny},
		{
			Value: &httpupload.Slot{
				PutURL:  "https://upload.montague.tld/4a771ac1/tr%C3%A8s%20cool.jpg",
				Headers: []httpupload.Header{{Name: "Authorization", Value: "Basic Base64String=="}, {Name: "Cookie", Value: "foo=bar; user=romeo"}},
				GetURL:  "https://download.montague.tld/4a771ac1/tr%C3%A8s%20cool.jpg",
			},
			XML: `<slot xmlns="urn:xmpp:http:upload:0"><put url="https://upload.montague.tld/4a771ac1/tr%C3%A8s%20cool.jpg">` +
				`<header name="Authorization">Basic Base64String==</header><header name="Cookie">foo=bar; user=romeo</header></put>` +
				`<get url="https://download.montague.tld/4a771ac1/tr%C3%A8s%20cool.jpg"></get></slot>`,
		},
		{
			// Other headers, and values with line breaks, are dropped.
			Value: &httpupload.Slot{PutURL: "https://u/p", GetURL: "https://u/g", Headers: []httpupload.Header{{Name: "Expires", Value: "x"}}},
			XML: `<slot xmlns="urn:xmpp:http:upload:0"><put url="https://u/p"><header name="Host">evil</header>` +
				`<header name="Cookie">a&#xA;Host: evil</header><header name="Expires">x</header></put><get url="https://u/g"/></slot>`,
			NoMarshal: true,
		},
		{Value: &httpupload.Slot{}, XML: `<slot xmlns="urn:xmpp:http:upload:0"><put url="http://u/p"/><get url="https://u/g"/></slot>`, Err: httpupload.ErrBadSlot},
		{Value: &httpupload.Slot{}, XML: `<slot xmlns="urn:xmpp:http:upload:0"><put url="https://u/p"/></slot>`, Err: httpupload.ErrBadSlot},
	})
	if _, err := xml.Marshal(httpupload.Request{Filename: "a"}); !errors.Is(err, httpupload.ErrBadRequest) {
		t.Errorf("request without size marshaled: %v", err)
	}
}

const uploadInfo = `<query xmlns="http://jabber.org/protocol/disco#info">` +
	`<identity category="store" type="file" name="HTTP File Upload"/><feature var="urn:xmpp:http:upload:0"/>` +
	`<x type="result" xmlns="jabber:x:data"><field var="FORM_TYPE" type="hidden"><value>urn:xmpp:http:upload:0</value></field>` +
	`<field var="max-file-size"><value>5242880</value></field></x></query>`

func TestDiscover(t *testing.T) {
	s, srv := fakesession.New(t, jid.MustParse("romeo@montague.tld/garden"), func(req string) string {
		switch {
		case strings.Contains(req, `to="montague.tld"`) && strings.Contains(req, "disco#info"):
			return `<iq xmlns="jabber:client" type="result" id="{{id}}" from="montague.tld"><query xmlns="http://jabber.org/protocol/disco#info"><feature var="urn:xmpp:ping"/></query></iq>`
		case strings.Contains(req, `to="montague.tld"`) && strings.Contains(req, "disco#items"):
			return `<iq xmlns="jabber:client" type="result" id="{{id}}" from="montague.tld"><query xmlns="http://jabber.org/protocol/disco#items">` +
				`<item jid="conference.montague.tld"/><item jid="upload.montague.tld"/></query></iq>`
		case strings.Contains(req, `to="conference.montague.tld"`):
			return `<iq xmlns="jabber:client" type="result" id="{{id}}" from="conference.montague.tld"><query xmlns="http://jabber.org/protocol/disco#info"><feature var="http://jabber.org/protocol/muc"/></query></iq>`
		case strings.Contains(req, `to="upload.montague.tld"`) && strings.Contains(req, "disco#info"):
			return `<iq xmlns="jabber:client" type="result" id="{{id}}" from="upload.montague.tld">` + uploadInfo + `</iq>`
		case strings.Contains(req, `to="upload.montague.tld"`) && strings.Contains(req, `filename="big.bin"`):
			return `<iq xmlns="jabber:client" type="error" id="{{id}}" from="upload.montague.tld"><error type="modify">` +
				`<not-acceptable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><file-too-large xmlns="urn:xmpp:http:upload:0"><max-file-size>5242880</max-file-size></file-too-large></error></iq>`
		case strings.Contains(req, `to="upload.montague.tld"`) && strings.Contains(req, `filename="empty.bin"`):
			return `<iq xmlns="jabber:client" type="result" id="{{id}}" from="upload.montague.tld"/>`
		case strings.Contains(req, `to="upload.montague.tld"`):
			return `<iq xmlns="jabber:client" type="result" id="{{id}}" from="upload.montague.tld"><slot xmlns="urn:xmpp:http:upload:0">` +
				`<put url="https://upload.montague.tld/p/a.jpg"><header name="Authorization">Basic x</header></put><get url="https://upload.montague.tld/g/a.jpg"/></slot></iq>`
		}
		return ""
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	svc, err := httpupload.Discover(ctx, s, jid.MustParse("montague.tld"))
	if err != nil {
		t.Fatal(err)
	}
	if svc.JID.String() != "upload.montague.tld" || svc.MaxSize != 5242880 {
		t.Fatalf("wrong service %+v", svc)
	}
	slot, err := httpupload.RequestSlot(ctx, s, svc.JID, httpupload.Request{Filename: "a.jpg", Size: 10, ContentType: "image/jpeg"})
	if err != nil {
		t.Fatal(err)
	}
	if slot.PutURL != "https://upload.montague.tld/p/a.jpg" || slot.GetURL != "https://upload.montague.tld/g/a.jpg" || len(slot.Headers) != 1 {
		t.Fatalf("wrong slot %+v", slot)
	}
	if _, err := httpupload.RequestSlot(ctx, s, svc.JID, httpupload.Request{Filename: "big.bin", Size: 1 << 30}); !errors.Is(err, httpupload.ErrTooLarge) {
		t.Errorf("too large: %v", err)
	}
	if _, err := httpupload.RequestSlot(ctx, s, svc.JID, httpupload.Request{Filename: "empty.bin", Size: 3}); !errors.Is(err, httpupload.ErrBadSlot) {
		t.Errorf("empty result: %v", err)
	}
	if _, err := httpupload.RequestSlot(ctx, s, svc.JID, httpupload.Request{Filename: "zero.bin"}); !errors.Is(err, httpupload.ErrBadRequest) {
		t.Errorf("zero size: %v", err)
	}
	last := srv.Requests()
	if req := last[len(last)-2]; !strings.Contains(req, `<request xmlns="urn:xmpp:http:upload:0" filename="big.bin" size="1073741824"`) {
		t.Errorf("wrong request: %s", req)
	}
}

func TestDiscoverNone(t *testing.T) {
	s, _ := fakesession.New(t, jid.MustParse("romeo@montague.tld/garden"), func(req string) string {
		if strings.Contains(req, "disco#items") {
			return `<iq xmlns="jabber:client" type="result" id="{{id}}" from="montague.tld"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`
		}
		return `<iq xmlns="jabber:client" type="result" id="{{id}}" from="montague.tld"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := httpupload.Discover(ctx, s, jid.MustParse("montague.tld")); !errors.Is(err, httpupload.ErrNoService) {
		t.Fatalf("want ErrNoService, got %v", err)
	}
}

func TestPut(t *testing.T) {
	var got []byte
	var hdr http.Header
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		if r.URL.Path == "/forbidden" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		got, _ = io.ReadAll(r.Body)
		hdr = r.Header
		w.WriteHeader(http.StatusCreated)
	}))
	defer ts.Close()
	ctx := context.Background()
	slot := httpupload.Slot{PutURL: ts.URL + "/p", GetURL: ts.URL + "/g", Headers: []httpupload.Header{{Name: "Authorization", Value: "Basic x"}, {Name: "Host", Value: "evil"}}}
	if err := httpupload.Put(ctx, ts.Client(), slot, []byte("file bytes"), "text/plain"); err != nil {
		t.Fatal(err)
	}
	if string(got) != "file bytes" || hdr.Get("Authorization") != "Basic x" || hdr.Get("Content-Type") != "text/plain" || hdr.Get("Content-Length") != "10" {
		t.Errorf("wrong upload %q %v", got, hdr)
	}
	slot.PutURL = ts.URL + "/forbidden?token=secret"
	err := httpupload.Put(ctx, ts.Client(), slot, []byte("x"), "")
	if err == nil || !strings.Contains(err.Error(), "403") || strings.Contains(err.Error(), "secret") {
		t.Errorf("forbidden: %v", err)
	}
}

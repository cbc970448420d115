package vcardphoto_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/avatar"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/xmltest"
	"github.com/mxomemo/xmpp-bridge/xmpp/vcardphoto"
)

var img = []byte("\x89PNG\r\n\x1a\nnot really a png, but bytes")

func result(vcard string) string {
	return `<iq xmlns="jabber:client" type="result" id="1">` + vcard + `</iq>`
}

func TestParse(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString(img)
	for _, tc := range []struct {
		name string
		in   string
		want vcardphoto.Photo
		err  error
	}{
		{name: "photo", in: result(`<vCard xmlns="vcard-temp"><FN>Carol</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>` + b64 + `</BINVAL></PHOTO></vCard>`),
			want: vcardphoto.Photo{Type: "image/png", Data: img}},
		{name: "wrapped base64", in: result(`<vCard xmlns="vcard-temp"><PHOTO><TYPE> image/jpeg </TYPE><BINVAL>` + b64[:10] + "\r\n" + b64[10:] + `</BINVAL></PHOTO></vCard>`),
			want: vcardphoto.Photo{Type: "image/jpeg", Data: img}},
		{name: "no photo", in: result(`<vCard xmlns="vcard-temp"><FN>Carol</FN></vCard>`)},
		{name: "external photo", in: result(`<vCard xmlns="vcard-temp"><PHOTO><EXTVAL>https://example.org/a.png</EXTVAL></PHOTO></vCard>`)},
		{name: "empty result", in: result(``)},
		{name: "no vcard stored", in: `<iq xmlns="jabber:client" type="error" id="1"><error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`},
		{name: "forbidden", in: `<iq xmlns="jabber:client" type="error" id="1"><error type="auth"><forbidden xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`,
			err: stanza.Error{Condition: stanza.Forbidden}},
		{name: "bad base64", in: result(`<vCard xmlns="vcard-temp"><PHOTO><BINVAL>%%%</BINVAL></PHOTO></vCard>`), err: avatar.ErrMalformed},
		{name: "too large", in: result(`<vCard xmlns="vcard-temp"><PHOTO><BINVAL>` + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, avatar.MaxSize+3)) + `</BINVAL></PHOTO></vCard>`),
			err: avatar.ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := vcardphoto.Parse(xmltest.Reader(tc.in))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("wrong error: want=%v, got=%v", tc.err, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Type != tc.want.Type || !bytes.Equal(got.Data, tc.want.Data) {
				t.Errorf("Parse = %q %d bytes, want %q %d bytes", got.Type, len(got.Data), tc.want.Type, len(tc.want.Data))
			}
		})
	}
}

func TestRequests(t *testing.T) {
	got, err := xmltest.Encode(vcardphoto.GetIQ(jid.MustParse("carol@example.org")))
	if want := `<iq type="get" to="carol@example.org"><vCard xmlns="vcard-temp"></vCard></iq>`; err != nil || got != want {
		t.Errorf("GetIQ = %s (%v)", got, err)
	}
	got, err = xmltest.Encode(vcardphoto.SetIQ(vcardphoto.Photo{Type: "image/png", Data: []byte("hi")}))
	if want := `<iq type="set"><vCard xmlns="vcard-temp"><PHOTO><TYPE>image/png</TYPE><BINVAL>aGk=</BINVAL></PHOTO></vCard></iq>`; err != nil || got != want {
		t.Errorf("SetIQ = %s (%v)", got, err)
	}
	// What SetIQ sends, Parse reads back.
	set, _ := xmltest.Encode(vcardphoto.SetIQ(vcardphoto.Photo{Type: "image/png", Data: img}))
	set = strings.Replace(set, `type="set"`, `xmlns="jabber:client" type="result"`, 1)
	p, err := vcardphoto.Parse(xmltest.Reader(set))
	if err != nil || !bytes.Equal(p.Data, img) || p.ID() != avatar.ID(img) {
		t.Errorf("round trip: %+v, %v", p, err)
	}
}

func TestParseUpdate(t *testing.T) {
	const hash = "sha1-of-nothing-but-a-test-value-4242424"
	for _, tc := range []struct {
		name string
		in   string
		want vcardphoto.Update
		ok   bool
		err  bool
	}{
		{name: "hash", in: `<presence xmlns="jabber:client" from="c@x/r"><x xmlns="vcard-temp:x:update"><photo> ` + strings.ToUpper(hash) + ` </photo></x></presence>`,
			want: vcardphoto.Update{Ready: true, Hash: hash}, ok: true},
		{name: "no photo", in: `<presence xmlns="jabber:client"><x xmlns="vcard-temp:x:update"><photo/></x></presence>`,
			want: vcardphoto.Update{Ready: true}, ok: true},
		{name: "not ready", in: `<presence xmlns="jabber:client"><x xmlns="vcard-temp:x:update"/></presence>`, ok: true},
		{name: "none", in: `<presence xmlns="jabber:client"><show>away</show></presence>`},
		{name: "other x", in: `<presence xmlns="jabber:client"><x xmlns="http://jabber.org/protocol/muc#user"/></presence>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := vcardphoto.ParseUpdate(xmltest.Reader(tc.in))
			if (err != nil) != tc.err || ok != tc.ok || got != tc.want {
				t.Errorf("ParseUpdate = %+v, %v, %v; want %+v, %v", got, ok, err, tc.want, tc.ok)
			}
		})
	}
	got, err := xmltest.Encode(vcardphoto.UpdateElement("abc"))
	if want := `<x xmlns="vcard-temp:x:update"><photo>abc</photo></x>`; err != nil || got != want {
		t.Errorf("UpdateElement = %s (%v)", got, err)
	}
}

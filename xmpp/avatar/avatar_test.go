package avatar_test

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"mellium.im/xmlstream"

	"github.com/mxomemo/xmpp-bridge/xmpp/avatar"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/xmltest"
	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
)

var (
	_ xml.Marshaler       = avatar.Metadata{}
	_ xml.Unmarshaler     = (*avatar.Metadata)(nil)
	_ xmlstream.Marshaler = avatar.Metadata{}
)

// png is a 1x1 PNG; its SHA-1 is pngID.
var png = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82")

var pngID = avatar.ID(png)

func TestMetadataEncoding(t *testing.T) {
	xmltest.Run(t, []xmltest.Case{
		0: {
			Value: &avatar.Metadata{Infos: []avatar.Info{{ID: pngID, Type: "image/png", Bytes: len(png), Width: 1, Height: 1}}},
			XML:   `<metadata xmlns="urn:xmpp:avatar:metadata"><info id="` + pngID + `" type="image/png" bytes="70" width="1" height="1"></info></metadata>`,
		},
		1: {
			Value: &avatar.Metadata{},
			XML:   `<metadata xmlns="urn:xmpp:avatar:metadata"></metadata>`,
		},
		2: {
			// XEP-0084 example 3: a second version hosted elsewhere, and a pointer.
			Value: &avatar.Metadata{Infos: []avatar.Info{
				{ID: "111f4b3c50d7b0df729d299bc6f8e9ef9066971f", Type: "image/png", Bytes: 12345, Width: 64, Height: 64},
				{ID: "e279f80c38f99c1e7e53e262b440993b2f7eea57", Type: "image/png", Bytes: 60000, Width: 128, Height: 128, URL: "http://avatars.example.org/happy.png"},
			}},
			XML: `<metadata xmlns="urn:xmpp:avatar:metadata">` +
				`<info bytes="12345" height="64" id="111F4B3C50D7B0DF729D299BC6F8E9EF9066971F" type="image/png" width="64"/>` +
				`<info bytes="60000" height="128" id="e279f80c38f99c1e7e53e262b440993b2f7eea57" type="image/png" url="http://avatars.example.org/happy.png" width="128"/>` +
				`<pointer><x xmlns="http://example.com/virtualworlds"/></pointer></metadata>`,
			NoMarshal: true,
		},
		3: {
			Value: &avatar.Metadata{},
			XML:   `<metadata xmlns="urn:xmpp:avatar:metadata"><info id="not-a-hash" type="image/png" bytes="1"/></metadata>`,
			Err:   avatar.ErrMalformed,
		},
		4: {
			Value: &avatar.Metadata{},
			XML:   `<metadata xmlns="urn:xmpp:avatar:metadata"><info id="` + pngID + `" type="image/png"/></metadata>`,
			Err:   avatar.ErrMalformed,
		},
		5: {
			Value: &avatar.Metadata{},
			XML:   `<data xmlns="urn:xmpp:avatar:data"/>`,
			Err:   avatar.ErrMalformed,
		},
	})
}

func TestInData(t *testing.T) {
	m := avatar.Metadata{Infos: []avatar.Info{{ID: "a", URL: "https://x"}, {ID: "b"}}}
	if i, ok := m.InData(); !ok || i.ID != "b" {
		t.Errorf("InData = %+v, %v", i, ok)
	}
	if _, ok := (avatar.Metadata{}).InData(); ok {
		t.Error("empty metadata has an image")
	}
}

func item(t *testing.T, id string, payload xml.TokenReader) pubsub.Item {
	t.Helper()
	it, err := pubsub.NewItem(id, payload)
	if err != nil {
		t.Fatal(err)
	}
	return it
}

func TestParseMetadataItem(t *testing.T) {
	m := avatar.Metadata{Infos: []avatar.Info{{ID: pngID, Type: "image/png", Bytes: len(png)}}}
	got, err := avatar.ParseMetadata(item(t, pngID, m.TokenReader()))
	if err != nil || len(got.Infos) != 1 || got.Infos[0] != m.Infos[0] {
		t.Fatalf("ParseMetadata = %+v, %v", got, err)
	}
	if _, err := avatar.ParseMetadata(item(t, pngID, nil)); !errors.Is(err, avatar.ErrMalformed) {
		t.Errorf("item without payload: %v", err)
	}
}

func TestParseData(t *testing.T) {
	big := bytes.Repeat([]byte{1}, avatar.MaxSize+1)
	raw := func(text string) xml.TokenReader {
		return xmltest.Reader(`<data xmlns="urn:xmpp:avatar:data">` + text + `</data>`)
	}
	b64 := base64.StdEncoding.EncodeToString(png)
	for _, tc := range []struct {
		name    string
		payload xml.TokenReader
		id      string
		err     error
	}{
		{name: "ok", payload: avatar.Data(png), id: pngID},
		{name: "upper-case id", payload: avatar.Data(png), id: strings.ToUpper(pngID)},
		{name: "wrapped lines", payload: raw(b64[:20] + "\n  " + b64[20:] + "\n"), id: pngID},
		{name: "hash mismatch", payload: avatar.Data(png), id: avatar.ID([]byte("other")), err: avatar.ErrHashMismatch},
		{name: "bad base64", payload: raw("not base64!"), id: pngID, err: avatar.ErrMalformed},
		{name: "empty", payload: raw(""), id: pngID, err: avatar.ErrMalformed},
		{name: "too large", payload: avatar.Data(big), id: avatar.ID(big), err: avatar.ErrTooLarge},
		{name: "wrong element", payload: xmltest.Reader(`<metadata xmlns="urn:xmpp:avatar:metadata"/>`), id: pngID, err: avatar.ErrMalformed},
		{name: "no payload", id: pngID, err: avatar.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := avatar.ParseData(item(t, tc.id, tc.payload), tc.id)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("wrong error: want=%v, got=%v", tc.err, err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, png) {
				t.Fatalf("ParseData = %d bytes, %v", len(got), err)
			}
		})
	}
}

func TestDataEncoding(t *testing.T) {
	got, err := xmltest.Encode(avatar.Data([]byte("hi")))
	if want := `<data xmlns="urn:xmpp:avatar:data">aGk=</data>`; err != nil || got != want {
		t.Errorf("Data = %s (%v), want %s", got, err, want)
	}
}

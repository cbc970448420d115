package carbons_test

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/carbons"
)

func serve(t *testing.T, m *mux.ServeMux, in string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(in))
	tok, err := d.Token()
	if err != nil {
		t.Fatal(err)
	}
	start := tok.(xml.StartElement)
	err = m.HandleXMPP(struct {
		xml.TokenReader
		xmlstream.Encoder
	}{d, xml.NewEncoder(io.Discard)}, &start)
	if err != nil {
		t.Fatalf("handler failed: %v", err)
	}
}

func TestHandle(t *testing.T) {
	var (
		got     []carbons.Carbon
		dropped []error
	)
	m := mux.New(stanza.NSClient, carbons.Handle(romeo, func(c carbons.Carbon) error {
		got = append(got, c)
		return nil
	}, func(_ stanza.Message, err error) {
		dropped = append(dropped, err)
	}))
	serve(t, m, wrap("", "received", inner))
	serve(t, m, wrap("romeo@montague.example", "sent", sent))
	serve(t, m, wrap("tybalt@capulet.example", "received", inner))
	if len(got) != 2 || got[0].Sent || !got[1].Sent {
		t.Errorf("wrong carbons handled: %+v", got)
	}
	if len(dropped) != 1 || !errors.Is(dropped[0], carbons.ErrForged) {
		t.Errorf("forged carbon not dropped: %v", dropped)
	}
}

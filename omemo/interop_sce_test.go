package omemo_test

import (
	"strings"
	"testing"

	"github.com/mxomemo/xmpp-bridge/omemo"
)

// TestInteropEnvelopeStyles decrypts OMEMO 2 messages from python-twomemo
// whose SCE envelopes are written the ways XML libraries write them:
// ElementTree's own serialiser (ns0:/ns1: prefixes on the root, which once
// decrypted to an empty body and was dropped), the same indented with an
// XML declaration, and with affix elements we do not know. Every one must
// give the body.
func TestInteropEnvelopeStyles(t *testing.T) {
	s := newSession(t, omemo.V2)
	for _, tc := range []struct{ style, marker string }{
		{"etree", "ns0:envelope"},
		{"etree-pretty", "\n  <ns0:content>"},
		{"affix", "urn:example:affix"},
		{"", "<envelope xmlns="},
	} {
		t.Run("style="+tc.style, func(t *testing.T) {
			body := "body <&> in style " + tc.style
			var r struct {
				XML      string `json:"xml"`
				Envelope string `json:"envelope"`
			}
			s.py.mustInto("encrypt", map[string]any{"to": ourJID, "version": "2", "plaintext": body, "style": tc.style}, &r)
			if !strings.Contains(r.Envelope, tc.marker) {
				t.Fatalf("python's %q envelope lacks %q: %s", tc.style, tc.marker, r.Envelope)
			}
			t.Logf("python's envelope: %s", r.Envelope)
			d := s.mustDecrypt(r.XML)
			if got := s.body(d); got != body {
				t.Errorf("body %q, want %q", got, body)
			}
		})
	}
}

package omemo

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
)

// NamespaceSCE is the XEP-0420 Stanza Content Encryption namespace.
const NamespaceSCE = "urn:xmpp:sce:1"

const maxRPad = 200

// Envelope is an XEP-0420 <envelope/>, the plaintext of an OMEMO 2 message.
type Envelope struct {
	// Content is the inner XML of <content/> (e.g. a <body/> in jabber:client).
	Content []byte
	// From is the sender's JID (<from jid/>), required.
	From string
	// To is the recipient JID (<to jid/>), set for groups; optional.
	To string
	// Time is <time stamp/>, optional.
	Time time.Time
	// RPad is the random padding; Marshal fills it when empty.
	RPad string
}

// Marshal returns the envelope's XML. It adds random padding of 0–199
// characters when e.RPad is empty; rnd defaults to crypto/rand.
func (e *Envelope) Marshal(rnd io.Reader) ([]byte, error) {
	if e.From == "" {
		return nil, fmt.Errorf("%w: no from", ErrEnvelope)
	}
	if err := checkInnerXML(e.Content); err != nil {
		return nil, err
	}
	rpad := e.RPad
	if rpad == "" {
		if rnd == nil {
			rnd = rand.Reader
		}
		var n [1]byte
		if _, err := io.ReadFull(rnd, n[:]); err != nil {
			return nil, fmt.Errorf("failed to read randomness: %w", err)
		}
		pad := make([]byte, int(n[0])%150+1)
		if _, err := io.ReadFull(rnd, pad); err != nil {
			return nil, fmt.Errorf("failed to read randomness: %w", err)
		}
		rpad = base64.RawStdEncoding.EncodeToString(pad)
		if len(rpad) >= maxRPad {
			rpad = rpad[:maxRPad-1]
		}
	}
	var buf bytes.Buffer
	buf.WriteString(`<envelope xmlns='urn:xmpp:sce:1'><content>`)
	buf.Write(e.Content)
	buf.WriteString(`</content><rpad>`)
	xml.EscapeText(&buf, []byte(rpad))
	buf.WriteString(`</rpad>`)
	if !e.Time.IsZero() {
		buf.WriteString(`<time stamp='`)
		buf.WriteString(e.Time.UTC().Format(time.RFC3339))
		buf.WriteString(`'/>`)
	}
	if e.To != "" {
		buf.WriteString(`<to jid='`)
		xml.EscapeText(&buf, []byte(e.To))
		buf.WriteString(`'/>`)
	}
	buf.WriteString(`<from jid='`)
	xml.EscapeText(&buf, []byte(e.From))
	buf.WriteString(`'/></envelope>`)
	return buf.Bytes(), nil
}

// checkInnerXML makes sure content is a well-formed XML fragment, so that it
// cannot break out of <content/>.
func checkInnerXML(content []byte) error {
	d := xml.NewDecoder(io.MultiReader(strings.NewReader("<c>"), bytes.NewReader(content), strings.NewReader("</c>")))
	depth := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			if depth != 0 {
				return fmt.Errorf("%w: unbalanced content", ErrEnvelope)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: content: %v", ErrEnvelope, err)
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
			if depth == 0 {
				if _, err := d.Token(); err != io.EOF {
					return fmt.Errorf("%w: content escapes its element", ErrEnvelope)
				}
				return nil
			}
		}
	}
}

func bareJID(j string) string {
	if i := strings.IndexByte(j, '/'); i >= 0 {
		return j[:i]
	}
	return j
}

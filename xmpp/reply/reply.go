package reply

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/fallback"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/children"
)

// NS is the namespace of XEP-0461.
const NS = "urn:xmpp:reply:0"

// Errors for malformed replies.
var (
	ErrMissingID = errors.New("reply: reply without id")
	ErrTwoReply  = errors.New("reply: message with more than one reply element")
)

// Reply is the <reply/> element.
type Reply struct {
	// To is the author of the replied-to message; it may be zero.
	To jid.JID
	ID string
}

// TokenReader implements xmlstream.Marshaler.
func (r Reply) TokenReader() xml.TokenReader {
	var attrs []xml.Attr
	if !r.To.Equal(jid.JID{}) {
		attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "to"}, Value: r.To.String()})
	}
	attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "id"}, Value: r.ID})
	return xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: NS, Local: "reply"}, Attr: attrs})
}

// WriteXML implements xmlstream.WriterTo.
func (r Reply) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, r.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (r Reply) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	if r.ID == "" {
		return ErrMissingID
	}
	_, err := r.WriteXML(e)
	return err
}

// UnmarshalXML implements xml.Unmarshaler.
func (r *Reply) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	id, _ := children.Attr(start, "id")
	if id == "" {
		return ErrMissingID
	}
	v := Reply{ID: id}
	if to, ok := children.Attr(start, "to"); ok && to != "" {
		j, err := jid.Parse(to)
		if err != nil {
			return fmt.Errorf("reply: bad to %q: %w", to, err)
		}
		v.To = j
	}
	*r = v
	return d.Skip()
}

// Parse reads a message stanza from r and returns its reply, or ok=false
// if it is not a reply.
func Parse(r xml.TokenReader) (rep Reply, ok bool, err error) {
	_, err = children.Each(r, func(d *xml.Decoder, start xml.StartElement) (bool, error) {
		if start.Name.Space != NS || start.Name.Local != "reply" {
			return false, nil
		}
		if ok {
			return true, ErrTwoReply
		}
		ok = true
		return true, d.DecodeElement(&rep, &start)
	})
	if err != nil {
		return Reply{}, false, fmt.Errorf("failed to read reply: %w", err)
	}
	return rep, ok, nil
}

// Strip removes the reply fallback (the quote) from body.
func Strip(body string, fallbacks []fallback.Fallback) (string, error) {
	return fallback.Strip(body, fallbacks, NS)
}

// Quote returns text as a "> " quote, one line each, ending in a newline.
func Quote(text string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		b.WriteString("> ")
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// Message returns msg as a reply r with body. If quote is not empty, the
// body starts with Quote(quote), marked as reply fallback.
func Message(msg stanza.Message, r Reply, quote, body string) xml.TokenReader {
	parts := []xml.TokenReader{r.TokenReader()}
	if quote != "" {
		q := Quote(quote)
		body = q + body
		parts = append(parts, fallback.Fallback{
			For:  NS,
			Body: []fallback.Range{{Start: 0, End: utf8.RuneCountInString(q)}},
		}.TokenReader())
	}
	parts = append([]xml.TokenReader{
		xmlstream.Wrap(xmlstream.Token(xml.CharData(body)), xml.StartElement{Name: xml.Name{Local: "body"}}),
	}, parts...)
	return msg.Wrap(xmlstream.MultiReader(parts...))
}

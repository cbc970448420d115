package omemoxmpp

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"slices"
	"strings"

	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/xmpp/eme"
)

// ErrUnreadableContent: an OMEMO 2 message decrypted, but its envelope's
// <content/> holds nothing the bridge can show (no body, and elements it
// does not know). It wraps omemo.ErrEnvelope. The user must be told: the
// sender wrote something that would otherwise vanish.
var ErrUnreadableContent = fmt.Errorf("%w: no text the bridge understands", omemo.ErrEnvelope)

// silentNamespaces are the namespaces of content elements that carry no
// chat message of their own: an envelope holding only these (or nothing)
// is not a message to show, and no notice either.
var silentNamespaces = []string{
	"http://jabber.org/protocol/chatstates",
	"urn:xmpp:receipts",
	"urn:xmpp:chat-markers:0",
	"urn:xmpp:hints",
	"urn:xmpp:sid:0",
	eme.NS,
	"urn:xmpp:fallback:0",
	"urn:xmpp:reply:0",
	"urn:xmpp:message-correct:0",
	"http://jabber.org/protocol/address",
	// Libervia wraps 0.3 key transport elements in OMEMO 2 envelopes.
	omemo.NamespaceV03,
	omemo.NamespaceV2,
}

// bodyNamespaces are where a <body/> in <content/> is read from: jabber:client
// as XEP-0420 writes it, and no namespace or the SCE namespace for writers
// that forgot the declaration (the text is there; dropping it would be loss).
var bodyNamespaces = []string{stanza.NSClient, "", omemo.NamespaceSCE}

// readContent returns the message text of an SCE <content/> (as
// omemo.ParseEnvelope gives it: self-contained, every top-level child
// declaring its namespace): the first <body/>, preferring one without
// xml:lang, or else an XEP-0066 URL. It returns "" without error when the
// content holds no message (nothing, or only chat states, receipts and
// the like), and ErrUnreadableContent when it holds something else.
func readContent(content []byte) (string, error) {
	// One buffer: a bytes.Reader is an io.ByteReader, which xml.NewDecoder
	// reads directly instead of allocating a 4 kB bufio.Reader.
	const open, end = "<c xmlns='" + stanza.NSClient + "'>", "</c>"
	doc := make([]byte, 0, len(open)+len(content)+len(end))
	doc = append(append(append(doc, open...), content...), end...)
	d := xml.NewDecoder(bytes.NewReader(doc))
	if _, err := d.Token(); err != nil {
		return "", fmt.Errorf("%w: content: %w", omemo.ErrEnvelope, err)
	}
	var (
		body, url  string
		found      bool
		chosenLang bool
		unknown    []string
	)
	for {
		tok, err := d.Token()
		if err != nil {
			return "", fmt.Errorf("%w: content: %w", omemo.ErrEnvelope, err)
		}
		s, ok := tok.(xml.StartElement)
		if _, end := tok.(xml.EndElement); end {
			break
		}
		if !ok {
			continue
		}
		switch {
		case s.Name.Local == "body" && slices.Contains(bodyNamespaces, s.Name.Space):
			var text string
			if err := d.DecodeElement(&text, &s); err != nil {
				return "", fmt.Errorf("%w: body: %w", omemo.ErrEnvelope, err)
			}
			hasLang := slices.ContainsFunc(s.Attr, func(a xml.Attr) bool { return a.Name.Local == "lang" })
			if !found || (chosenLang && !hasLang) {
				body, chosenLang, found = text, hasLang, true
			}
			continue
		case s.Name.Local == "x" && s.Name.Space == "jabber:x:oob":
			var x struct {
				URL string `xml:"url"`
			}
			if err := d.DecodeElement(&x, &s); err != nil {
				return "", fmt.Errorf("%w: oob: %w", omemo.ErrEnvelope, err)
			}
			if url == "" {
				url = strings.TrimSpace(x.URL)
			}
			continue
		case !slices.Contains(silentNamespaces, s.Name.Space):
			unknown = append(unknown, fmt.Sprintf("{%s}%s", s.Name.Space, s.Name.Local))
		}
		if err := d.Skip(); err != nil {
			return "", fmt.Errorf("%w: content: %w", omemo.ErrEnvelope, err)
		}
	}
	switch {
	case found && body != "":
		return body, nil
	case url != "":
		return url, nil
	case len(unknown) > 0:
		// Elements we cannot show, and no text: say so.
		return "", fmt.Errorf("%w (%s)", ErrUnreadableContent, strings.Join(unknown, ", "))
	}
	return "", nil
}

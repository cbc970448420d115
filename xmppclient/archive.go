package xmppclient

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"time"

	"mellium.im/xmlstream"

	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
)

// Archive results (XEP-0313) arrive as messages wrapping the archived
// message: <message><result queryid id><forwarded><delay/><message/>
// </forwarded></result></message>.

// NSMAM is the XEP-0313 namespace (also the feature a room with an
// archive announces).
const NSMAM = nsMAM

const (
	nsMAM     = "urn:xmpp:mam:2"
	nsForward = "urn:xmpp:forward:0"
	nsDelay   = "urn:xmpp:delay"
)

// ErrNotArchived: the message is not an archive result.
var ErrNotArchived = errors.New("not an archive result")

// Archived is one unwrapped archive result.
type Archived struct {
	QueryID string
	// Query is what QueryID is for, looked up by the Router as the result
	// arrived (its id may be forgotten by the time the result is handled).
	Query     QueryInfo
	ArchiveID string
	Stamp     time.Time
	Message   *stanzabuf.Stanza
}

// UnwrapArchived unwraps <message><result queryid id><forwarded><delay/>
// <message/></forwarded></result></message>. It does not check who sent
// it; the caller does, against the outer from and its own query ids.
func UnwrapArchived(st *stanzabuf.Stanza) (Archived, error) {
	var (
		a         Archived
		depth     int
		inResult  bool
		inForward bool
		capture   int
		inner     []xml.Token
	)
	r := st.Reader()
	for {
		tok, err := r.Token()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return Archived{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if capture > 0 {
				capture++
				inner = append(inner, t.Copy())
				continue
			}
			switch {
			case depth == 2 && t.Name.Space == nsMAM && t.Name.Local == "result":
				inResult = true
				a.QueryID, a.ArchiveID = AttrValue(t, "queryid"), AttrValue(t, "id")
			case depth == 3 && inResult && t.Name.Space == nsForward && t.Name.Local == "forwarded":
				inForward = true
			case depth == 4 && inForward && t.Name.Space == nsDelay && t.Name.Local == "delay":
				a.Stamp, _ = time.Parse(time.RFC3339, AttrValue(t, "stamp"))
			case depth == 4 && inForward && t.Name.Local == "message" && a.Message == nil && len(inner) == 0:
				capture = 1
				inner = append(inner, t.Copy())
			}
		case xml.EndElement:
			if capture > 0 {
				inner = append(inner, t)
				capture--
			}
			depth--
		default:
			if capture > 0 {
				inner = append(inner, xml.CopyToken(tok))
			}
		}
	}
	if !inResult {
		return Archived{}, ErrNotArchived
	}
	if len(inner) == 0 || a.ArchiveID == "" {
		return Archived{}, fmt.Errorf("malformed archive result")
	}
	readers := make([]xml.TokenReader, len(inner))
	for i, t := range inner {
		readers[i] = xmlstream.Token(t)
	}
	msg, err := stanzabuf.Read(xmlstream.MultiReader(readers...))
	if err != nil {
		return Archived{}, fmt.Errorf("failed to read archived message: %w", err)
	}
	a.Message = msg
	return a, nil
}

// AttrValue is the value of start's attribute local (no namespace), "" if
// it has none.
func AttrValue(start xml.StartElement, local string) string {
	for _, a := range start.Attr {
		if a.Name.Local == local && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

// From is the archived message's from attribute.
func (a Archived) From() string {
	return AttrValue(a.Message.Start(), "from")
}

// ID is the archived message's id attribute (the sender's id).
func (a Archived) ID() string {
	return AttrValue(a.Message.Start(), "id")
}

// RoomMessage is the archived message of a room's archive, parsed.
func (a Archived) RoomMessage() (RoomMessage, error) {
	m, err := mucroom.ParseMessage(a.Message.Reader())
	return RoomMessage{Raw: a.Message, Message: m}, err
}

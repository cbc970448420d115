package msgconv

import (
	"context"
	"errors"
	"strings"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/format"
)

// XMPP bodies are plain text. Matrix HTML is flattened into the conventions
// XMPP clients render (XEP-0393 message styling: *bold*, _italic_,
// ~strike~, `code`, ``` blocks, "> " quotes), and links keep their target.

var htmlToBody = &format.HTMLParser{
	TabsToSpaces:   4,
	Newline:        "\n",
	HorizontalLine: "\n---\n",
	BoldConverter: func(s string, _ format.Context) string {
		return wrapStyle("*", s)
	},
	ItalicConverter: func(s string, _ format.Context) string {
		return wrapStyle("_", s)
	},
	StrikethroughConverter: func(s string, _ format.Context) string {
		return wrapStyle("~", s)
	},
	MonospaceConverter: func(s string, _ format.Context) string {
		return wrapStyle("`", s)
	},
	MonospaceBlockConverter: func(code, _ string, _ format.Context) string {
		return "```\n" + strings.TrimSuffix(code, "\n") + "\n```"
	},
	LinkConverter: func(text, href string, _ format.Context) string {
		target := strings.TrimPrefix(href, "mailto:")
		if text == href || text == target || href == "" {
			return text
		}
		return text + " <" + href + ">"
	},
	PillConverter: func(displayname, mxid, eventID string, _ format.Context) string {
		if displayname != "" {
			return displayname
		}
		return mxid
	},
}

// wrapStyle applies a styling directive only where XEP-0393 can express it:
// a span must not start or end with whitespace and must not cross lines.
func wrapStyle(marker, s string) string {
	trimmed := strings.TrimSpace(s)
	if trimmed == "" || strings.Contains(trimmed, "\n") {
		return s
	}
	lead := s[:strings.Index(s, trimmed)]
	trail := s[len(lead)+len(trimmed):]
	return lead + marker + trimmed + marker + trail
}

// BodyFromMatrix converts a Matrix text message to an XMPP body. ctx is
// only handed to mautrix's HTML parser (its converters here use none of it).
func BodyFromMatrix(ctx context.Context, content *event.MessageEventContent) string {
	var body string
	if content.Format == event.FormatHTML && content.FormattedBody != "" {
		body = htmlToBody.Parse(content.FormattedBody, format.NewContext(ctx))
	} else {
		body = content.Body
	}
	body = strings.TrimRight(body, "\n")
	if content.MsgType == event.MsgEmote {
		body = "/me " + body
	}
	return body
}

// MatrixFromBody converts an XMPP body to Matrix content. "/me " is the
// XEP-0245 action convention.
func MatrixFromBody(body string) *event.MessageEventContent {
	if rest, ok := strings.CutPrefix(body, "/me "); ok {
		return &event.MessageEventContent{MsgType: event.MsgEmote, Body: rest}
	}
	return &event.MessageEventContent{MsgType: event.MsgText, Body: body}
}

// errNoTarget: a correction whose message bridgev2 did not find.
var errNoTarget = errors.New("no message to correct")

// EditFromBody is the Matrix edit of existing to the corrected body
// (XEP-0308), in 1:1 chats and group chats.
func EditFromBody(existing []*database.Message, body string) (*bridgev2.ConvertedEdit, error) {
	if len(existing) == 0 {
		return nil, errNoTarget
	}
	return EditTo(existing, MatrixFromBody(body))
}

// EditTo is the Matrix edit of existing to content: text, or a file when
// the correction shares one (docs/media.md).
func EditTo(existing []*database.Message, content *event.MessageEventContent) (*bridgev2.ConvertedEdit, error) {
	if len(existing) == 0 {
		return nil, errNoTarget
	}
	return &bridgev2.ConvertedEdit{
		ModifiedParts: []*bridgev2.ConvertedEditPart{{
			Part:    existing[0],
			Type:    event.EventMessage,
			Content: content,
		}},
	}, nil
}

package bridge

import (
	"context"
	"fmt"
	"strings"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/format"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/portal"
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

// bodyFromMatrix converts a Matrix text message to an XMPP body.
func bodyFromMatrix(content *event.MessageEventContent) string {
	var body string
	if content.Format == event.FormatHTML && content.FormattedBody != "" {
		body = htmlToBody.Parse(content.FormattedBody, format.NewContext(context.Background()))
	} else {
		body = content.Body
	}
	body = strings.TrimRight(body, "\n")
	if content.MsgType == event.MsgEmote {
		body = "/me " + body
	}
	return body
}

// matrixFromBody converts an XMPP body to Matrix content. "/me " is the
// XEP-0245 action convention.
func matrixFromBody(body string) *event.MessageEventContent {
	if rest, ok := strings.CutPrefix(body, "/me "); ok {
		return &event.MessageEventContent{MsgType: event.MsgEmote, Body: rest}
	}
	return &event.MessageEventContent{MsgType: event.MsgText, Body: body}
}

// convertIncoming builds the Matrix message for a received XMPP message.
func (c *Client) convertIncoming(ctx context.Context, p *bridgev2.Portal, intent bridgev2.MatrixAPI, in *incomingMessage) (*bridgev2.ConvertedMessage, error) {
	content := matrixFromBody(in.Body)
	if f := incomingMedia(in); f != nil {
		content = c.mediaContent(ctx, p, intent, f)
	}
	c.omemoConvert(ctx, p, in, content)
	return &bridgev2.ConvertedMessage{
		ReplyTo: c.replyTarget(ctx, p, in),
		Parts: []*bridgev2.ConvertedMessagePart{{
			ID:         "",
			Type:       event.EventMessage,
			Content:    content,
			DBMetadata: &portal.MessageMetadata{OriginID: in.OriginID, StanzaID: in.StanzaID, Markable: in.Markable},
		}},
	}, nil
}

// replyTarget finds the bridged message an XMPP reply points at. The reply's
// to names the author; when it is missing either side of the chat may have
// written the message.
func (c *Client) replyTarget(ctx context.Context, _ *bridgev2.Portal, in *incomingMessage) *networkid.MessageOptionalPartID {
	if in.ReplyTo == nil {
		return nil
	}
	var authors []jid.JID
	if to := in.ReplyTo.To.Bare(); !to.Equal(jid.JID{}) {
		authors = []jid.JID{to}
	}
	if id := c.findMessage(ctx, in.Peer, in.ReplyTo.ID, authors...); id != "" {
		return &networkid.MessageOptionalPartID{MessageID: id}
	}
	return nil
}

// convertEdit builds the Matrix edit for a XEP-0308 correction.
func (c *Client) convertEdit(ctx context.Context, p *bridgev2.Portal, intent bridgev2.MatrixAPI, existing []*database.Message, in *incomingMessage) (*bridgev2.ConvertedEdit, error) {
	if len(existing) == 0 {
		return nil, fmt.Errorf("no message to correct")
	}
	return editTo(existing, c.correctedContent(ctx, p, intent, in.Body, in.OMEMO, in.Raw)), nil
}

// editTo is the Matrix edit of existing to the corrected content, in 1:1
// chats and group chats (mediaedit.go: a file when the correction shares
// one).
func editTo(existing []*database.Message, content *event.MessageEventContent) *bridgev2.ConvertedEdit {
	return &bridgev2.ConvertedEdit{
		ModifiedParts: []*bridgev2.ConvertedEditPart{{
			Part:    existing[0],
			Type:    event.EventMessage,
			Content: content,
		}},
	}
}

package bridge

import (
	"context"
	"errors"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"

	"github.com/mxomemo/xmpp-bridge/msgconv"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// Corrections of files (XEP-0308 on a file message), docs/media.md.
//
// XMPP -> Matrix: a correction whose new body shares a file (the same rule
// as a new message: exactly its OOB URL, or an aesgcm:// link) is
// downloaded like one and edits the Matrix message into that file; any
// other correction edits it into text, as the sender wrote it.
//
// Matrix -> XMPP: an edit whose new content is a file (a caption edit, or
// a replaced file) is refused with a notice: a correction carries only a
// new body, so the file would become its caption on XMPP, or a second
// upload would be needed that XMPP clients do not show as the same message.

// errFileEdit is the notice for a Matrix edit of a file.
var errFileEdit = errors.New("edits of files cannot be bridged to XMPP (a correction would replace the file with its caption); send the file again")

// refuseFileEdit refuses the Matrix edit of a file.
func refuseFileEdit(content *event.MessageEventContent) error {
	if content != nil && content.MsgType.IsMedia() {
		return refusal(errFileEdit)
	}
	return nil
}

// correctedContent is the new Matrix content of a correction with body:
// the file f when it shares one (sharedFile).
func (c *Client) correctedContent(ctx context.Context, p *bridgev2.Portal, intent bridgev2.MatrixAPI, body string, f *xmppclient.File) *event.MessageEventContent {
	if f != nil {
		return c.mediaContent(ctx, p, intent, f)
	}
	return msgconv.MatrixFromBody(body)
}

package bridge

import (
	"context"
	"io"
	"os"
	"strings"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"

	"github.com/mxomemo/xmpp-bridge/internal/thumbnail"
)

// Images from XMPP get their width and height, and a JPEG preview when they
// are larger than 800×600 (internal/thumbnail), in the Matrix event's info,
// as Matrix clients expect: in an encrypted room the homeserver cannot make
// previews of the encrypted file, so the preview is the only one there is.
// Both are read from the temporary file bridgev2 uploads from, after the
// download; only images up to 12 megapixels are decoded, one at a time.

// imageExtras is what the bridge learnt of an image file.
type imageExtras struct {
	info  thumbnail.Info
	thumb []byte
	tw    int
	th    int
}

// readImageExtras looks at the file just written to w (bridgev2's temporary
// file) when it is an image; nil when there is nothing to add. It leaves
// the file's offset anywhere: bridgev2 rewinds it before the upload.
func readImageExtras(ctx context.Context, w io.Writer, mimeType string) *imageExtras {
	f, ok := w.(*os.File)
	if !ok || !strings.HasPrefix(mimeType, "image/") {
		return nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil
	}
	info, ok := thumbnail.Probe(f)
	if !ok {
		return nil
	}
	x := &imageExtras{info: info}
	if !thumbnail.Wanted(info) {
		return x
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return x
	}
	thumb, tw, th, err := thumbnail.Make(f, info)
	if err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("No preview for an image from XMPP")
		return x
	}
	x.thumb, x.tw, x.th = thumb, tw, th
	return x
}

// apply sets the image's size in content and uploads its
// preview (encrypted in encrypted rooms, as bridgev2 does for the file).
func (x *imageExtras) apply(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, content *event.MessageEventContent) {
	if x == nil || content.Info == nil {
		return
	}
	content.Info.Width, content.Info.Height = x.info.Width, x.info.Height
	if x.thumb == nil {
		return
	}
	mxc, file, err := intent.UploadMedia(ctx, portal.MXID, x.thumb, "thumbnail.jpg", "image/jpeg")
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to upload the preview of an image")
		return
	}
	if file != nil {
		// bridgev2 put the mxc URI into file.
		content.Info.ThumbnailFile = file
	} else {
		content.Info.ThumbnailURL = mxc
	}
	content.Info.ThumbnailInfo = &event.FileInfo{MimeType: "image/jpeg", Size: len(x.thumb), Width: x.tw, Height: x.th}
}

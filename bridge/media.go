package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/event"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/metrics"
	"github.com/mxomemo/xmpp-bridge/msgconv"
	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/puppet"
	"github.com/mxomemo/xmpp-bridge/xmpp/aesgcm"
	"github.com/mxomemo/xmpp-bridge/xmpp/httpupload"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// Files cross as links (docs/media.md). Matrix -> XMPP: bridgev2 downloads
// the Matrix media (decrypted in encrypted rooms) to a file, xmppclient
// uploads it to the account's XEP-0363 service — encrypted first (XEP-0454)
// in an OMEMO chat, which then gets only the aesgcm:// link inside the
// OMEMO body — and the link goes out as the body (plus XEP-0066 in
// plaintext). A caption goes as a second text message. XMPP -> Matrix: a
// body that is exactly its OOB URL, or an aesgcm:// link, is streamed (at
// most network.max_media_size_mb), decrypted for aesgcm, into Matrix.
// Transfers are in xmppclient (mediafetch.go, mediaupload.go), names and
// types in msgconv (media.go); this file joins them to bridgev2.

// defaultMaxMediaMB is the download limit when the config names none.
const defaultMaxMediaMB = 100

// media is the login's file transfer policy from the config: the admin's
// TLS exemptions and private hosts. The login's own self-signed host
// applies to its XMPP connection only.
func (c *Client) media() *xmppclient.Media {
	cfg := &c.main.Config
	return &xmppclient.Media{
		InsecureTLSHosts: append(append([]string(nil), cfg.InsecureTLSHosts...), cfg.MediaInsecureTLSHosts...),
		PrivateHosts:     cfg.MediaPrivateHosts,
	}
}

// maxMediaSize is the download limit in bytes.
func (c *Client) maxMediaSize() int64 {
	mb := c.main.Config.MaxMediaSizeMB
	if mb <= 0 {
		mb = defaultMaxMediaMB
	}
	return int64(mb) << 20
}

// mediaFeatures returns base with the upload service's size limit once it
// is known.
func (c *Client) mediaFeatures(base *event.RoomFeatures) *event.RoomFeatures {
	return msgconv.WithUploadLimit(base, c.uploads.KnownLimit())
}

func mediaStatus(err error, reason event.MessageStatusReason) error {
	return bridgev2.WrapErrorInStatus(err).
		WithStatus(event.MessageStatusFail).
		WithErrorReason(reason).
		WithMessage("Not sent: " + err.Error()).
		WithIsCertain(true).
		WithSendNotice(true)
}

// handleMatrixMedia is the Matrix -> XMPP path for a file message in a 1:1
// chat.
func (c *Client) handleMatrixMedia(ctx context.Context, msg *bridgev2.MatrixMessage, to jid.JID) (*bridgev2.MatrixMessageResponse, error) {
	s := c.currentSession()
	if s == nil {
		return nil, xmppclient.ErrNotConnected
	}
	out := &xmppclient.Outgoing{To: to, ID: newMessageID()}
	encrypted, err := c.chatEncrypted(ctx, msg.Portal, to)
	if err != nil {
		return nil, err
	}
	if err := c.uploadMatrixMedia(ctx, s, msg.Content, encrypted, out); err != nil {
		return nil, err
	}
	if err := c.Send(ctx, dmTarget(msg.Portal), out); err != nil {
		c.main.Metrics.MessageBridged(metrics.MatrixToXMPP, metrics.OutcomeFailedSend)
		return nil, err
	}
	c.main.Metrics.MessageBridged(metrics.MatrixToXMPP, metrics.OutcomeOK)
	if caption := msgconv.Caption(msg.Content); caption != "" {
		capOut := &xmppclient.Outgoing{To: to, ID: newMessageID(), Body: caption}
		if err := c.Send(ctx, dmTarget(msg.Portal), capOut); err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to send the caption of a file")
		}
	}
	return &bridgev2.MatrixMessageResponse{
		DB: &database.Message{
			ID:        portal.MakeMessageID(to, c.account, out.ID),
			SenderID:  puppet.UserID(c.account),
			Timestamp: time.Now(),
			Metadata:  &portal.MessageMetadata{OriginID: out.ID},
		},
	}, nil
}

// uploadMatrixMedia has bridgev2 download the file of a Matrix message and
// xmppclient upload it to the account's XEP-0363 service, encrypted
// (XEP-0454) for an encrypted chat, and sets out's body and media to share
// it. The same for 1:1 chats and group chats.
func (c *Client) uploadMatrixMedia(ctx context.Context, s *xmpp.Session, content *event.MessageEventContent, encrypted bool, out *xmppclient.Outgoing) error {
	log := zerolog.Ctx(ctx)
	svc, err := c.uploads.Service(ctx, s, c.account.Domain())
	if err != nil {
		log.Warn().Err(err).Msg("No HTTP File Upload service")
		return mediaStatus(fmt.Errorf("your XMPP server offers no file upload (XEP-0363): %w", err), event.MessageStatusUnsupported)
	}
	overhead := int64(0)
	if encrypted {
		overhead = aesgcm.TagSize
	}
	tooLarge := func(size int64) error {
		return mediaStatus(fmt.Errorf("%w: %.1f MiB, your XMPP server's upload limit is %.1f MiB",
			xmppclient.ErrMediaTooLarge, float64(size)/(1<<20), float64(svc.MaxSize)/(1<<20)), event.MessageStatusUnsupported)
	}
	if content.Info != nil && svc.MaxSize > 0 && int64(content.Info.Size)+overhead > svc.MaxSize {
		return tooLarge(int64(content.Info.Size))
	}
	uri := content.URL
	if content.File != nil {
		uri = content.File.URL
	}
	name := msgconv.FileName(content)
	mimeType := ""
	if content.Info != nil {
		mimeType = content.Info.MimeType
	}
	if content.MSC3245Voice != nil && !strings.HasPrefix(mimeType, "audio/") {
		mimeType = "audio/ogg"
	}
	var (
		key    aesgcm.Key
		slot   httpupload.Slot
		status error // what the user is told, set inside the callback
	)
	// Through files, never whole in memory: bridgev2 downloads (and
	// decrypts) the Matrix file to a temporary file, which is encrypted
	// into another one for an encrypted chat, and uploaded from there.
	err = c.main.Bridge.Bot.DownloadMediaToFile(ctx, uri, content.File, false, func(f *os.File) error {
		st, err := f.Stat()
		if err != nil {
			return err
		}
		size := st.Size()
		if svc.MaxSize > 0 && size+overhead > svc.MaxSize {
			status = tooLarge(size)
			return status
		}
		var body io.Reader = f
		if encrypted {
			// Never upload the plaintext of an encrypted chat.
			tmp, k, err := xmppclient.EncryptToTemp(f)
			if err != nil {
				return err
			}
			defer func() { _ = tmp.Close(); _ = os.Remove(tmp.Name()) }()
			key = k
			body, size, mimeType = tmp, size+aesgcm.TagSize, "application/octet-stream"
		}
		slot, err = c.media().Upload(ctx, s, svc, body, size, name, mimeType)
		if errors.Is(err, httpupload.ErrTooLarge) {
			status = tooLarge(size)
			return status
		}
		if err != nil {
			log.Warn().Err(err).Msg("Failed to upload file")
			status = mediaStatus(fmt.Errorf("upload to your XMPP server failed: %w", err), event.MessageStatusNetworkError)
			return status
		}
		return nil
	})
	if status != nil {
		return status
	}
	if err != nil {
		log.Warn().Err(err).Msg("Failed to download Matrix media")
		return bridgev2.ErrMediaDownloadFailed
	}
	out.Media = &xmppclient.OutgoingMedia{Encrypted: encrypted}
	if encrypted {
		out.Body, err = aesgcm.Link(slot.GetURL, key)
		return err
	}
	out.Body, out.Media.OOB = slot.GetURL, slot.GetURL
	return nil
}

// incomingMedia reports whether in shares a file (xmppclient.SharedFile);
// never for an OMEMO message that failed to decrypt.
func incomingMedia(in *incoming) *xmppclient.File {
	if in.privateEncrypted {
		return nil
	}
	return sharedFile(&in.Message, in.Body, in.OMEMO)
}

// sharedFile is incomingMedia for a 1:1 or groupchat message m with body,
// decrypted as info says (nil for plaintext).
func sharedFile(m interface{ SharedFile(string) *xmppclient.File }, body string, info *omemoIncoming) *xmppclient.File {
	if info != nil && info.Failed {
		return nil
	}
	return m.SharedFile(body)
}

// streamMedia downloads f straight into the file bridgev2 uploads to the
// portal (a temporary file, never the whole file in memory).
func (c *Client) streamMedia(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, f *xmppclient.File, name string) (*event.MessageEventContent, error) {
	ctx, cancel := context.WithTimeout(ctx, xmppclient.MediaTimeout)
	defer cancel()
	limit := c.maxMediaSize()
	resp, err := c.media().Open(ctx, f, limit)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var (
		size     int64
		mimeType string
		img      *imageExtras
		voiceMS  = -1 // an Ogg Opus file: a voice message of this length
	)
	mxc, file, err := intent.UploadMediaStream(ctx, portal.MXID, xmppclient.SizeHint(resp, f), true, func(w io.Writer) (*bridgev2.FileStreamResult, error) {
		n, head, err := xmppclient.Copy(w, resp.Body, f, limit, msgconv.SniffSize)
		if err != nil {
			return nil, err
		}
		size, mimeType = n, msgconv.DetectMIME(head, name)
		img = readImageExtras(ctx, w, mimeType)
		voiceMS = voiceLength(w, head)
		return &bridgev2.FileStreamResult{FileName: name, MimeType: mimeType}, nil
	})
	if err != nil {
		return nil, err
	}
	content := msgconv.FileContent(name, mimeType, size, mxc, file)
	img.apply(ctx, portal, intent, content)
	if voiceMS >= 0 {
		msgconv.MarkVoice(content, voiceMS)
	}
	return content, nil
}

// mediaContent downloads f and uploads it to Matrix; on failure it returns
// a notice instead (with the link for plain files, never with the key of
// an aesgcm link).
func (c *Client) mediaContent(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, f *xmppclient.File) *event.MessageEventContent {
	content, err := c.streamMedia(ctx, portal, intent, f, msgconv.FileNameFromURL(f.URL))
	if err == nil {
		return content
	}
	zerolog.Ctx(ctx).Warn().Err(err).Bool("aesgcm", f.Key != nil).Msg("Failed to bridge a file from XMPP")
	return msgconv.FileFailedNotice(err, f.Link, f.Key != nil)
}

package bridge

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/event"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/metrics"
	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/puppet"
	"github.com/mxomemo/xmpp-bridge/xmpp/aesgcm"
	"github.com/mxomemo/xmpp-bridge/xmpp/httpupload"
	"github.com/mxomemo/xmpp-bridge/xmpp/oob"
	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// Files cross as links. Matrix -> XMPP: the bridge downloads the Matrix
// media (bridgev2 decrypts it in encrypted rooms), uploads it to the
// account's XEP-0363 service and sends the GET URL as the body plus an
// XEP-0066 <x/> — or, in an OMEMO chat, encrypts the file first (XEP-0454)
// and sends only the aesgcm:// link, inside the OMEMO-encrypted body. A
// caption goes as a second text message. XMPP -> Matrix: a body that is
// exactly its OOB URL, or an aesgcm:// link, is downloaded (at most
// network.max_media_size_mb), decrypted for aesgcm, and uploaded to Matrix.

// defaultMaxMediaMB is the download limit when the config names none.
const defaultMaxMediaMB = 100

// mediaTimeout bounds one upload or download.
const mediaTimeout = 5 * time.Minute

// Errors of the media path; the texts reach Matrix users.
var (
	errMediaChatChanged = errors.New("the chat's OMEMO encryption changed while the file was uploaded; send it again")
	errMediaTooLarge    = errors.New("file too large")
	errNotHTTPS         = errors.New("only https links are downloaded")
)

// outgoingMedia marks an outgoing message as a shared file.
type outgoingMedia struct {
	// OOB is the URL for the XEP-0066 element of a plaintext message.
	OOB string
	// Encrypted says the upload was made for an OMEMO chat (an aesgcm
	// link); the message must then go out encrypted, and a plaintext
	// upload must not.
	Encrypted bool
}

// mediaExtras checks that a shared file goes out as it was uploaded and
// adds the OOB element to a plaintext message. It never adds anything to
// an encrypted one, where the element would reveal the link.
func mediaExtras(out *outgoingMessage, encrypted bool, extra []xml.TokenReader) ([]xml.TokenReader, error) {
	if out.Media == nil {
		return extra, nil
	}
	if out.Media.Encrypted != encrypted {
		return nil, mediaStatus(errMediaChatChanged, event.MessageStatusGenericError)
	}
	if !encrypted && out.Media.OOB != "" {
		extra = append(extra, oob.Data{URL: out.Media.OOB}.TokenReader())
	}
	return extra, nil
}

// uploadServices caches each login's XEP-0363 service per XMPP session,
// so that a reconnect looks again.
var uploadServices sync.Map // *Client -> cachedService

type cachedService struct {
	session *xmpp.Session
	svc     httpupload.Service
}

func (c *Client) uploadService(ctx context.Context, s *xmpp.Session) (httpupload.Service, error) {
	if v, ok := uploadServices.Load(c); ok && v.(cachedService).session == s {
		return v.(cachedService).svc, nil
	}
	svc, err := httpupload.Discover(ctx, s, c.account.Domain())
	if err != nil {
		return httpupload.Service{}, err
	}
	uploadServices.Store(c, cachedService{session: s, svc: svc})
	return svc, nil
}

// knownUploadLimit is the cached max-file-size of the login's service, 0
// if unknown.
func (c *Client) knownUploadLimit() int64 {
	if v, ok := uploadServices.Load(c); ok {
		return v.(cachedService).svc.MaxSize
	}
	return 0
}

// mediaFeatures returns base with the upload service's size limit once it
// is known.
func (c *Client) mediaFeatures(base *event.RoomFeatures) *event.RoomFeatures {
	limit := c.knownUploadLimit()
	if limit <= 0 {
		return base
	}
	f := base.Clone()
	f.ID = base.ID + ".max" + strconv.FormatInt(limit, 10)
	for _, ff := range f.File {
		ff.MaxSize = limit
	}
	return f
}

// mediaFileFeatures are the Matrix file messages a 1:1 chat takes (not
// stickers); a caption is sent as a second message.
var mediaFileFeatures = func() event.FileFeatureMap {
	ff := func() *event.FileFeatures {
		return &event.FileFeatures{
			MimeTypes: map[string]event.CapabilitySupportLevel{"*/*": event.CapLevelFullySupported},
			Caption:   event.CapLevelPartialSupport,
		}
	}
	return event.FileFeatureMap{
		event.MsgImage:    ff(),
		event.MsgVideo:    ff(),
		event.MsgAudio:    ff(),
		event.MsgFile:     ff(),
		event.CapMsgVoice: ff(),
		event.CapMsgGIF:   ff(),
	}
}()

// insecureHost reports whether the admin lets the bridge reach media on
// host without verifying its certificate (network.insecure_tls_hosts or
// media_insecure_tls_hosts). The login's own self-signed host applies to
// its XMPP connection only.
func (c *Client) insecureHost(host string) bool {
	return hostListed(c.main.Config.InsecureTLSHosts, host) || hostListed(c.main.Config.MediaInsecureTLSHosts, host)
}

// httpClient is the client for one https URL.
func (c *Client) httpClient(rawURL string) (*http.Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("bad URL: %w", err)
	}
	if u.Scheme != "https" {
		return nil, errNotHTTPS
	}
	insecure := c.insecureHost(u.Hostname())
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // the private-address check must see the real peer
	tr.DialContext = c.mediaDialer()
	tr.TLSClientConfig = &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Only for a host the admin or the user named, as for XMPP.
		InsecureSkipVerify: insecure, //nolint:gosec
	}
	return &http.Client{
		Transport: tr,
		Timeout:   mediaTimeout,
		// The transport's TLS settings are those of the first host: a
		// redirect must not carry them elsewhere, nor leave https.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			switch {
			case len(via) >= 5:
				return errors.New("too many redirects")
			case req.URL.Scheme != "https":
				return errNotHTTPS
			case insecure && !strings.EqualFold(req.URL.Hostname(), u.Hostname()):
				return fmt.Errorf("redirect from %s to another host refused", u.Hostname())
			}
			return nil
		},
	}, nil
}

// maxMediaSize is the download limit in bytes.
func (c *Client) maxMediaSize() int64 {
	mb := c.main.Config.MaxMediaSizeMB
	if mb <= 0 {
		mb = defaultMaxMediaMB
	}
	return int64(mb) << 20
}

func mediaStatus(err error, reason event.MessageStatusReason) error {
	return bridgev2.WrapErrorInStatus(err).
		WithStatus(event.MessageStatusFail).
		WithErrorReason(reason).
		WithMessage("Not sent: " + err.Error()).
		WithIsCertain(true).
		WithSendNotice(true)
}

// mediaFileName is the name the file goes out with.
func mediaFileName(content *event.MessageEventContent) string {
	name := content.FileName
	if name == "" {
		name = content.Body
	}
	name = path.Base(strings.ReplaceAll(name, "\\", "/"))
	if name == "" || name == "." || name == "/" {
		name = "file"
	}
	if content.MSC3245Voice != nil {
		return voiceFileName(name)
	}
	if content.Info != nil && path.Ext(name) == "" {
		if exts, _ := mime.ExtensionsByType(content.Info.MimeType); len(exts) > 0 {
			name += exts[0]
		}
	}
	return name
}

// mediaCaption is the caption of a Matrix file message, "" if none.
func mediaCaption(content *event.MessageEventContent) string {
	if content.FileName != "" && content.Body != "" && content.Body != content.FileName {
		return content.Body
	}
	return ""
}

// handleMatrixMedia is the Matrix -> XMPP path for a file message in a 1:1
// chat.
func (c *Client) handleMatrixMedia(ctx context.Context, msg *bridgev2.MatrixMessage, to jid.JID) (*bridgev2.MatrixMessageResponse, error) {
	s := c.currentSession()
	if s == nil {
		return nil, xmppclient.ErrNotConnected
	}
	out := &outgoingMessage{To: to, Type: stanza.ChatMessage, ID: newMessageID()}
	encrypted, err := c.chatEncrypted(ctx, out)
	if err != nil {
		return nil, err
	}
	if err := c.uploadMatrixMedia(ctx, s, msg.Content, encrypted, out); err != nil {
		return nil, err
	}
	if err := c.sendMessage(ctx, out); err != nil {
		c.main.Metrics.MessageBridged(metrics.MatrixToXMPP, metrics.OutcomeFailedSend)
		return nil, err
	}
	c.main.Metrics.MessageBridged(metrics.MatrixToXMPP, metrics.OutcomeOK)
	if caption := mediaCaption(msg.Content); caption != "" {
		capOut := &outgoingMessage{To: to, Type: stanza.ChatMessage, ID: newMessageID(), Body: caption}
		if err := c.sendMessage(ctx, capOut); err != nil {
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

// uploadMatrixMedia downloads the file of a Matrix message and uploads it
// to the account's XEP-0363 service, encrypted (XEP-0454) for an encrypted
// chat, and sets out's body and media to share it. The same for 1:1 chats
// and group chats.
func (c *Client) uploadMatrixMedia(ctx context.Context, s *xmpp.Session, content *event.MessageEventContent, encrypted bool, out *outgoingMessage) error {
	log := zerolog.Ctx(ctx)
	svc, err := c.uploadService(ctx, s)
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
			errMediaTooLarge, float64(size)/(1<<20), float64(svc.MaxSize)/(1<<20)), event.MessageStatusUnsupported)
	}
	if content.Info != nil && svc.MaxSize > 0 && int64(content.Info.Size)+overhead > svc.MaxSize {
		return tooLarge(int64(content.Info.Size))
	}
	uri := content.URL
	if content.File != nil {
		uri = content.File.URL
	}
	name := mediaFileName(content)
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
			tmp, err := encryptToTemp(f, &key)
			if err != nil {
				return err
			}
			defer func() { _ = tmp.Close(); _ = os.Remove(tmp.Name()) }()
			body, size, mimeType = tmp, size+aesgcm.TagSize, "application/octet-stream"
		}
		uctx, cancel := context.WithTimeout(ctx, mediaTimeout)
		defer cancel()
		slot, err = httpupload.RequestSlot(uctx, s, svc.JID, httpupload.Request{Filename: name, Size: size, ContentType: mimeType})
		if errors.Is(err, httpupload.ErrTooLarge) {
			status = tooLarge(size)
			return status
		}
		if err != nil {
			log.Warn().Err(err).Msg("Failed to get an upload slot")
			status = mediaStatus(fmt.Errorf("upload to your XMPP server failed: %w", err), event.MessageStatusNetworkError)
			return status
		}
		hc, err := c.httpClient(slot.PutURL)
		if err == nil {
			err = httpupload.PutReader(uctx, hc, slot, body, size, mimeType)
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
	out.Media = &outgoingMedia{Encrypted: encrypted}
	if encrypted {
		out.Body, err = aesgcm.Link(slot.GetURL, key)
		return err
	}
	out.Body, out.Media.OOB = slot.GetURL, slot.GetURL
	return nil
}

// encryptToTemp encrypts f under a fresh key (set in key) into a temporary
// file, rewound; the caller removes it.
func encryptToTemp(f io.Reader, key *aesgcm.Key) (*os.File, error) {
	k, err := aesgcm.NewKey()
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp("", "xmpp-upload-*")
	if err != nil {
		return nil, fmt.Errorf("failed to create temp file: %w", err)
	}
	fail := func(err error) (*os.File, error) {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return nil, err
	}
	enc, err := aesgcm.NewEncrypter(k, tmp)
	if err != nil {
		return fail(err)
	}
	if _, err := io.Copy(enc, f); err != nil {
		return fail(fmt.Errorf("failed to encrypt file: %w", err))
	}
	if err := enc.Close(); err != nil {
		return fail(err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}
	*key = k
	return tmp, nil
}

// incomingFile is a file shared in an XMPP message.
type incomingFile struct {
	// URL is the https URL to fetch.
	URL string
	// Key is set for XEP-0454 links.
	Key *aesgcm.Key
	// Link is what the message carried (for aesgcm with the key: never
	// show it).
	Link string
}

// incomingMedia reports whether in shares a file: its body is exactly an
// aesgcm:// link, or exactly the https URL of its OOB element.
func incomingMedia(in *incomingMessage) *incomingFile {
	return sharedFile(in.Body, in.OMEMO, in.Raw)
}

// sharedFile is incomingMedia for a message with body, decrypted as info
// says (nil for plaintext), in the stanza raw: 1:1 or groupchat.
func sharedFile(body string, info *omemoIncoming, raw *stanzabuf.Stanza) *incomingFile {
	if info != nil && info.Failed {
		return nil
	}
	body = strings.TrimSpace(body)
	if body == "" || strings.ContainsAny(body, " \t\r\n") {
		return nil
	}
	if aesgcm.IsLink(body) {
		getURL, key, err := aesgcm.Parse(body)
		if err != nil {
			return nil
		}
		return &incomingFile{URL: getURL, Key: &key, Link: body}
	}
	if raw == nil {
		return nil
	}
	d, ok, err := oob.Parse(raw.Reader())
	if err != nil || !ok || d.URL != body {
		return nil
	}
	if u, err := url.Parse(body); err != nil || u.Scheme != "https" || u.Host == "" {
		return nil
	}
	return &incomingFile{URL: body, Link: body}
}

// Downloads are streamed: the body goes (decrypted, for aesgcm links)
// straight into the file bridgev2 uploads to Matrix, never whole into
// memory; only the first bytes are kept, to tell the file's type.

// sniffSize is how much of a file detectMIME looks at.
const sniffSize = 512

// openDownload starts the download of f and checks what can be checked
// before the body: the status and the announced size against limit.
// Callers close the body.
func (c *Client) openDownload(ctx context.Context, f *incomingFile, limit int64) (*http.Response, error) {
	hc, err := c.httpClient(f.URL)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.URL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		// The error names the URL, which has no key (the fragment is not
		// part of f.URL).
		return nil, fmt.Errorf("download failed: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		_ = resp.Body.Close()
		return nil, fmt.Errorf("download failed: HTTP %s", resp.Status)
	}
	if resp.ContentLength > wireLimit(f, limit) {
		_ = resp.Body.Close()
		return nil, fmt.Errorf("%w: %.1f MiB, the bridge's limit is %.1f MiB", errMediaTooLarge, float64(resp.ContentLength)/(1<<20), float64(limit)/(1<<20))
	}
	return resp, nil
}

// wireLimit is how many bytes f may have on the wire for limit bytes of
// file.
func wireLimit(f *incomingFile, limit int64) int64 {
	if f.Key != nil {
		return limit + aesgcm.TagSize
	}
	return limit
}

// copyMedia writes the file from body (decrypted for aesgcm links) to w,
// failing past limit bytes; it returns the file's size and its first bytes.
// On error, what was written to w must be thrown away: an aesgcm file is
// authenticated only at its end.
func copyMedia(w io.Writer, body io.Reader, f *incomingFile, limit int64) (int64, []byte, error) {
	head := &headWriter{}
	out := io.MultiWriter(w, head)
	var dec *aesgcm.Decrypter
	if f.Key != nil {
		var err error
		if dec, err = aesgcm.NewDecrypter(*f.Key, out); err != nil {
			return 0, nil, err
		}
		out = dec
	}
	max := wireLimit(f, limit)
	n, err := io.Copy(out, io.LimitReader(body, max+1))
	if err != nil {
		return 0, nil, fmt.Errorf("download failed: %w", err)
	}
	if n > max {
		return 0, nil, fmt.Errorf("%w: more than the bridge's limit of %.1f MiB", errMediaTooLarge, float64(limit)/(1<<20))
	}
	if dec != nil {
		if err := dec.Close(); err != nil {
			return 0, nil, err
		}
		n -= aesgcm.TagSize
	}
	return n, head.b, nil
}

// headWriter keeps the first sniffSize bytes written to it.
type headWriter struct{ b []byte }

func (h *headWriter) Write(p []byte) (int, error) {
	if room := sniffSize - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// download fetches f, at most limit bytes, and decrypts it, into memory
// (for tests and small lookups; files to Matrix go through mediaContent).
func (c *Client) download(ctx context.Context, f *incomingFile, limit int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, mediaTimeout)
	defer cancel()
	resp, err := c.openDownload(ctx, f, limit)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, _, err := copyMedia(&buf, resp.Body, f, limit); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// streamMedia downloads f straight into the file bridgev2 uploads to the
// portal (a temporary file, never the whole file in memory).
func (c *Client) streamMedia(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, f *incomingFile, name string) (*event.MessageEventContent, error) {
	ctx, cancel := context.WithTimeout(ctx, mediaTimeout)
	defer cancel()
	limit := c.maxMediaSize()
	resp, err := c.openDownload(ctx, f, limit)
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
	hint := int64(0)
	if resp.ContentLength > 0 {
		hint = resp.ContentLength
		if f.Key != nil {
			hint = max(0, hint-aesgcm.TagSize)
		}
	}
	mxc, file, err := intent.UploadMediaStream(ctx, portal.MXID, hint, true, func(w io.Writer) (*bridgev2.FileStreamResult, error) {
		n, head, err := copyMedia(w, resp.Body, f, limit)
		if err != nil {
			return nil, err
		}
		size, mimeType = n, detectMIME(head, name)
		img = readImageExtras(ctx, w, mimeType)
		if oggOpus(head) {
			voiceMS = 0
			if f, ok := w.(*os.File); ok {
				voiceMS = oggOpusDuration(f, head)
			}
		}
		return &bridgev2.FileStreamResult{FileName: name, MimeType: mimeType}, nil
	})
	if err != nil {
		return nil, err
	}
	content := &event.MessageEventContent{
		MsgType: msgTypeFor(mimeType),
		Body:    name,
		URL:     mxc,
		File:    file,
		Info:    &event.FileInfo{MimeType: mimeType, Size: int(size)},
	}
	img.apply(ctx, portal, intent, content)
	if voiceMS >= 0 {
		markVoice(content, voiceMS)
	}
	return content, nil
}

// detectMIME picks the file's type from its content, then its name.
func detectMIME(data []byte, name string) string {
	if ogg := oggMIME(data); ogg != "" {
		return ogg
	}
	sniffed := http.DetectContentType(data)
	generic := sniffed == "application/octet-stream" || strings.HasPrefix(sniffed, "text/plain")
	if byExt := mime.TypeByExtension(path.Ext(name)); generic && byExt != "" {
		return byExt
	}
	return sniffed
}

func msgTypeFor(mimeType string) event.MessageType {
	switch {
	case strings.HasPrefix(mimeType, "image/"):
		return event.MsgImage
	case strings.HasPrefix(mimeType, "video/"):
		return event.MsgVideo
	case strings.HasPrefix(mimeType, "audio/"):
		return event.MsgAudio
	}
	return event.MsgFile
}

// fileNameFromURL is the last path segment of u.
func fileNameFromURL(u string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return "file"
	}
	name := path.Base(parsed.Path)
	if name == "" || name == "." || name == "/" {
		return "file"
	}
	return name
}

// mediaContent downloads f and uploads it to Matrix; on failure it returns
// a notice instead (with the link for plain files, never with the key of
// an aesgcm link).
func (c *Client) mediaContent(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, f *incomingFile) *event.MessageEventContent {
	log := zerolog.Ctx(ctx)
	name := fileNameFromURL(f.URL)
	content, err := c.streamMedia(ctx, portal, intent, f, name)
	if err == nil {
		return content
	}
	log.Warn().Err(err).Bool("aesgcm", f.Key != nil).Msg("Failed to bridge a file from XMPP")
	text := "Failed to bridge a file from XMPP (" + err.Error() + "): " + f.Link
	if f.Key != nil {
		text = "Failed to bridge an encrypted file from XMPP (" + err.Error() + "). Open it in an XMPP client."
	}
	return &event.MessageEventContent{MsgType: event.MsgNotice, Body: text}
}

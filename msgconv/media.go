package msgconv

import (
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// Files cross as links (docs/media.md); this file is what that means for
// the content on either side: names, types, captions, the failure notice,
// and the file features a chat announces.

// FileName is the name a Matrix file goes out with: never a path, with an
// extension from its type when it has none.
func FileName(content *event.MessageEventContent) string {
	name := content.FileName
	if name == "" {
		name = content.Body
	}
	name = path.Base(strings.ReplaceAll(name, "\\", "/"))
	if name == "" || name == "." || name == "/" {
		name = "file"
	}
	if content.MSC3245Voice != nil {
		return VoiceFileName(name)
	}
	if content.Info != nil && path.Ext(name) == "" {
		if exts, _ := mime.ExtensionsByType(content.Info.MimeType); len(exts) > 0 {
			name += exts[0]
		}
	}
	return name
}

// Caption is the caption of a Matrix file message, "" if none; it goes to
// XMPP as a second text message.
func Caption(content *event.MessageEventContent) string {
	if content.FileName != "" && content.Body != "" && content.Body != content.FileName {
		return content.Body
	}
	return ""
}

// SniffSize is how much of a file DetectMIME looks at.
const SniffSize = 512

// DetectMIME picks a file's type from its first bytes, then its name.
func DetectMIME(data []byte, name string) string {
	if ogg := OggMIME(data); ogg != "" {
		return ogg
	}
	sniffed := http.DetectContentType(data)
	generic := sniffed == "application/octet-stream" || strings.HasPrefix(sniffed, "text/plain")
	if byExt := mime.TypeByExtension(path.Ext(name)); generic && byExt != "" {
		return byExt
	}
	return sniffed
}

// MsgTypeFor is the Matrix message type of a file of mimeType.
func MsgTypeFor(mimeType string) event.MessageType {
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

// FileNameFromURL is the last path segment of u, "file" if none.
func FileNameFromURL(u string) string {
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

// FileContent is the Matrix message of a file uploaded to Matrix.
func FileContent(name, mimeType string, size int64, mxc id.ContentURIString, file *event.EncryptedFileInfo) *event.MessageEventContent {
	return &event.MessageEventContent{
		MsgType: MsgTypeFor(mimeType),
		Body:    name,
		URL:     mxc,
		File:    file,
		Info:    &event.FileInfo{MimeType: mimeType, Size: int(size)},
	}
}

// FileFailedNotice is what Matrix shows for a file from XMPP that could not
// be bridged: with the link for a plain file, never with the key of an
// aesgcm link (encrypted).
func FileFailedNotice(err error, link string, encrypted bool) *event.MessageEventContent {
	text := "Failed to bridge a file from XMPP (" + err.Error() + "): " + link
	if encrypted {
		text = "Failed to bridge an encrypted file from XMPP (" + err.Error() + "). Open it in an XMPP client."
	}
	return &event.MessageEventContent{MsgType: event.MsgNotice, Body: text}
}

// FileFeatures are the Matrix file messages a chat takes (not stickers); a
// caption is sent as a second message.
var FileFeatures = func() event.FileFeatureMap {
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

// WithUploadLimit returns base with the upload service's size limit, once
// it is known (limit > 0).
func WithUploadLimit(base *event.RoomFeatures, limit int64) *event.RoomFeatures {
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

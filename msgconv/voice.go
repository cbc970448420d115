package msgconv

import (
	"bytes"
	"encoding/binary"
	"io"
	"path"
	"strings"

	"maunium.net/go/mautrix/event"
)

// Voice messages. XMPP has no voice flag: Conversations (and Element,
// WhatsApp, Signal) record voice messages as Opus in an Ogg container, and
// XMPP clients show any audio file with a player. So an Ogg Opus file from
// XMPP becomes a Matrix voice message (MSC3245 `org.matrix.msc3245.voice`
// with MSC1767 audio info and its duration), other audio stays m.audio;
// and a Matrix voice message goes to XMPP as audio/ogg with an Ogg file
// name (.ogg added when it has none: servers pick the download type by
// the extension, and ejabberd knows .ogg, not .oga), which Conversations
// plays inline.

// OggMIME tells Ogg audio from Ogg video by the first stream's header (the
// generic sniffer says application/ogg for both); "" when data is no Ogg.
func OggMIME(head []byte) string {
	if len(head) < 36 || !bytes.HasPrefix(head, []byte("OggS")) {
		return ""
	}
	codec := head[28:]
	switch {
	case bytes.HasPrefix(codec, []byte("OpusHead")), bytes.HasPrefix(codec, []byte("\x01vorbis")),
		bytes.HasPrefix(codec, []byte("Speex")), bytes.HasPrefix(codec, []byte("\x7fFLAC")):
		return "audio/ogg"
	case bytes.HasPrefix(codec, []byte("\x80theora")):
		return "video/ogg"
	}
	return ""
}

// OggOpus reports whether head starts an Ogg Opus file: a voice message.
func OggOpus(head []byte) bool {
	return len(head) >= 36 && bytes.HasPrefix(head, []byte("OggS")) && bytes.HasPrefix(head[28:], []byte("OpusHead"))
}

// OggOpusDuration is the length in milliseconds of the Ogg Opus file r of
// size bytes (head: its first bytes), from the last page's granule position
// less the pre-skip; 0 when it cannot be read. Only the file's last 64 KiB
// are read.
func OggOpusDuration(r io.ReaderAt, size int64, head []byte) int {
	if len(head) < 28+12 {
		return 0
	}
	preSkip := int64(binary.LittleEndian.Uint16(head[28+10:]))
	off := max(size-64<<10, 0)
	tail := make([]byte, size-off)
	if _, err := r.ReadAt(tail, off); err != nil && err != io.EOF {
		return 0
	}
	i := bytes.LastIndex(tail, []byte("OggS"))
	if i < 0 || len(tail) < i+14 {
		return 0
	}
	granule := int64(binary.LittleEndian.Uint64(tail[i+6:]))
	if granule <= preSkip {
		return 0
	}
	return int((granule - preSkip) / 48) // Opus granules are 48 kHz samples
}

// MarkVoice flags content as a voice message of ms milliseconds.
func MarkVoice(content *event.MessageEventContent, ms int) {
	content.MsgType = event.MsgAudio
	content.MSC1767Audio = &event.MSC1767Audio{Duration: ms, Waveform: []int{}}
	content.MSC3245Voice = &event.MSC3245Voice{}
	if content.Info != nil && ms > 0 {
		content.Info.Duration = ms
	}
}

// VoiceFileName gives a Matrix voice message an Ogg name for XMPP.
func VoiceFileName(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".ogg", ".oga", ".opus":
		return name
	}
	return strings.TrimSuffix(name, path.Ext(name)) + ".ogg"
}

package msgconv

import (
	"bytes"
	"encoding/binary"
	"testing"

	"maunium.net/go/mautrix/event"
)

// oggOpusFile is a minimal Ogg Opus stream of ms milliseconds: an OpusHead
// page with a pre-skip of 312, filler, and a last page whose granule
// position ends the stream.
func oggOpusFile(ms int, filler int) []byte {
	page := func(granule uint64, payload []byte) []byte {
		p := []byte("OggS\x00\x02")
		p = binary.LittleEndian.AppendUint64(p, granule)
		p = append(p, make([]byte, 12)...) // serial, sequence, CRC (not checked)
		p = append(p, 1, byte(len(payload)))
		return append(p, payload...)
	}
	head := []byte("OpusHead\x01\x01")
	head = binary.LittleEndian.AppendUint16(head, 312)
	head = append(head, 0x80, 0xbb, 0, 0, 0, 0, 0)
	out := page(0, head)
	out = append(out, make([]byte, filler)...)
	return append(out, page(uint64(312+ms*48), []byte("end"))...)
}

func TestOggVoice(t *testing.T) {
	data := oggOpusFile(3000, 100<<10)
	if got := OggMIME(data); got != "audio/ogg" || !OggOpus(data) {
		t.Fatalf("oggMIME = %q, oggOpus = %v", got, OggOpus(data))
	}
	if got := DetectMIME(data[:SniffSize], "voice.bin"); got != "audio/ogg" {
		t.Errorf("detectMIME of Ogg Opus = %q, want audio/ogg (the generic sniffer says application/ogg)", got)
	}
	theora := append([]byte("OggS"), make([]byte, 24)...)
	theora = append(theora, "\x80theora........"...)
	if got := OggMIME(theora); got != "video/ogg" || OggOpus(theora) {
		t.Errorf("Theora: oggMIME = %q, oggOpus = %v", got, OggOpus(theora))
	}
	if OggMIME([]byte("\x89PNG\r\n\x1a\n")) != "" {
		t.Error("a PNG taken for Ogg")
	}
	if ms := OggOpusDuration(bytes.NewReader(data), int64(len(data)), data[:SniffSize]); ms != 3000 {
		t.Errorf("duration %d ms, want 3000", ms)
	}
	content := &event.MessageEventContent{MsgType: event.MsgFile, Info: &event.FileInfo{}}
	MarkVoice(content, 3000)
	if content.MsgType != event.MsgAudio || content.MSC3245Voice == nil || content.MSC1767Audio == nil || content.MSC1767Audio.Duration != 3000 || content.Info.Duration != 3000 {
		t.Errorf("markVoice: %+v", content)
	}
}

func TestVoiceFileName(t *testing.T) {
	for in, want := range map[string]string{
		"Voice message.ogg": "Voice message.ogg",
		"rec.OPUS":          "rec.OPUS",
		"Voice message":     "Voice message.ogg",
		"clip.webm":         "clip.ogg",
	} {
		if got := VoiceFileName(in); got != want {
			t.Errorf("VoiceFileName(%q) = %q, want %q", in, got, want)
		}
	}
	voice := &event.MessageEventContent{MsgType: event.MsgAudio, Body: "Voice message", MSC3245Voice: &event.MSC3245Voice{}, Info: &event.FileInfo{MimeType: "audio/ogg"}}
	if got := FileName(voice); got != "Voice message.ogg" {
		t.Errorf("FileName(voice) = %q", got)
	}
}

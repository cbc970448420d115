package bridge

import (
	"encoding/binary"
	"os"
	"path/filepath"
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
	if got := oggMIME(data); got != "audio/ogg" || !oggOpus(data) {
		t.Fatalf("oggMIME = %q, oggOpus = %v", got, oggOpus(data))
	}
	if got := detectMIME(data[:sniffSize], "voice.bin"); got != "audio/ogg" {
		t.Errorf("detectMIME of Ogg Opus = %q, want audio/ogg (the generic sniffer says application/ogg)", got)
	}
	theora := append([]byte("OggS"), make([]byte, 24)...)
	theora = append(theora, "\x80theora........"...)
	if got := oggMIME(theora); got != "video/ogg" || oggOpus(theora) {
		t.Errorf("Theora: oggMIME = %q, oggOpus = %v", got, oggOpus(theora))
	}
	if oggMIME([]byte("\x89PNG\r\n\x1a\n")) != "" {
		t.Error("a PNG taken for Ogg")
	}
	path := filepath.Join(t.TempDir(), "v.oga")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ms := oggOpusDuration(f, data[:sniffSize]); ms != 3000 {
		t.Errorf("duration %d ms, want 3000", ms)
	}
	content := &event.MessageEventContent{MsgType: event.MsgFile, Info: &event.FileInfo{}}
	markVoice(content, 3000)
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
		if got := voiceFileName(in); got != want {
			t.Errorf("voiceFileName(%q) = %q, want %q", in, got, want)
		}
	}
	voice := &event.MessageEventContent{MsgType: event.MsgAudio, Body: "Voice message", MSC3245Voice: &event.MSC3245Voice{}, Info: &event.FileInfo{MimeType: "audio/ogg"}}
	if got := mediaFileName(voice); got != "Voice message.ogg" {
		t.Errorf("mediaFileName(voice) = %q", got)
	}
	if err := refuseFileEdit(voice); err == nil {
		t.Error("an edit of a file was not refused")
	}
	if err := refuseFileEdit(&event.MessageEventContent{MsgType: event.MsgText}); err != nil {
		t.Errorf("a text edit was refused: %v", err)
	}
}

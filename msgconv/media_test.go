package msgconv

import (
	"testing"

	"maunium.net/go/mautrix/event"
)

func TestMediaNames(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	for _, tc := range []struct {
		data []byte
		name string
		mime string
		typ  event.MessageType
	}{
		{png, "x.bin", "image/png", event.MsgImage},
		{[]byte("plain words"), "notes.pdf", "application/pdf", event.MsgFile},
		{[]byte{0, 1, 2, 3}, "song.mp3", "audio/mpeg", event.MsgAudio},
		{[]byte{0, 1, 2, 3}, "noext", "application/octet-stream", event.MsgFile},
	} {
		got := DetectMIME(tc.data, tc.name)
		if got != tc.mime || MsgTypeFor(got) != tc.typ {
			t.Errorf("%s: %s %s, want %s %s", tc.name, got, MsgTypeFor(got), tc.mime, tc.typ)
		}
	}
	if n := FileNameFromURL("https://h/a/b%20c.png?x=1"); n != "b c.png" {
		t.Errorf("FileNameFromURL: %q", n)
	}
	if n := FileNameFromURL("https://h/"); n != "file" {
		t.Errorf("FileNameFromURL of a bare host: %q", n)
	}
	if n := FileName(&event.MessageEventContent{Body: "../../etc/passwd"}); n != "passwd" {
		t.Errorf("FileName: %q", n)
	}
	if n := FileName(&event.MessageEventContent{Body: "image", Info: &event.FileInfo{MimeType: "image/png"}}); n != "image.png" {
		t.Errorf("FileName without extension: %q", n)
	}
	if c := Caption(&event.MessageEventContent{Body: "look", FileName: "a.png"}); c != "look" {
		t.Errorf("caption: %q", c)
	}
	if c := Caption(&event.MessageEventContent{Body: "a.png"}); c != "" {
		t.Errorf("no caption: %q", c)
	}
}

func TestWithUploadLimit(t *testing.T) {
	base := &event.RoomFeatures{ID: "base", File: FileFeatures}
	if f := WithUploadLimit(base, 0); f != base {
		t.Error("features changed without a known limit")
	}
	f := WithUploadLimit(base, 5<<20)
	if f.ID == base.ID || f.File[event.MsgImage].MaxSize != 5<<20 || base.File[event.MsgImage].MaxSize != 0 {
		t.Errorf("features with a 5 MiB limit: %s %+v", f.ID, f.File[event.MsgImage])
	}
}

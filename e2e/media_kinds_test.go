package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

// TestMediaKinds: what a file is, both ways. An image from XMPP reaches Matrix with its width and
// height and an 800×600 JPEG preview (thumbnail_url, thumbnail_info); an Ogg Opus recording (how
// Conversations records voice messages) becomes a Matrix voice message (MSC3245) with its
// duration; a Matrix voice message reaches XMPP as audio/ogg with an Ogg file name; a correction
// (XEP-0308) whose new body is a file turns the Matrix message into that file; a Matrix edit of a
// file is refused with a notice and sends nothing. Prosody and ejabberd.
func TestMediaKinds(t *testing.T) {
	for _, server := range []string{"prosody", "ejabberd"} {
		t.Run(server, func(t *testing.T) {
			t.Parallel()
			runMediaKinds(t, server)
		})
	}
}

func runMediaKinds(t *testing.T, server string) {
	s := newStackOn(t, server, "sqlite", testenv.ProsodyOptions{UploadHTTPS: true})
	alice, alicePW := s.account(t, "kalice")
	bob, bobPW := s.account(t, "kbob")
	u := s.matrixUser(t, "mxkinds")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	mgmt := s.loginUser(ctx, t, u, alice, alicePW)
	web := trustingClient(t, s.xmpp.CertFile())
	bobC := s.peer(t, bob, bobPW, "kinds")
	hello := uniq("hello from bob")
	if err := bobC.SendChat(ctx, alice, "", "", hello); err != nil {
		t.Fatal(err)
	}
	room := waitPortalMessage(ctx, t, s, u, mgmt, bob, hello)
	shareFile := func(id, getURL, extra string) {
		t.Helper()
		raw := fmt.Sprintf(`<message xmlns="jabber:client" type="chat" to="%s" id="%s"><body>%s</body>`+
			`<x xmlns="jabber:x:oob"><url>%s</url></x>%s</message>`, alice, id, xmlEscape(getURL), xmlEscape(getURL), extra)
		if err := bobC.SendRaw(ctx, raw); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("ImageSizeAndThumbnail", func(t *testing.T) {
		img := testImage(t, 1200, 900)
		getURL := peerUpload(ctx, t, bobC, web, "photo.png", "image/png", img)
		cur := u.Cursor(room)
		shareFile(uniq("img"), getURL, "")
		content := waitMatrixFile(ctx, t, u, room, cur, s.ghost(bob)).Content.AsMessage()
		info := content.Info
		if content.MsgType != event.MsgImage || info == nil || info.Width != 1200 || info.Height != 900 {
			t.Fatalf("image content %s info %+v, want m.image 1200×900", content.MsgType, info)
		}
		ti := info.ThumbnailInfo
		if info.ThumbnailURL == "" || ti == nil || ti.MimeType != "image/jpeg" || ti.Width != 800 || ti.Height != 600 {
			t.Fatalf("thumbnail %q info %+v, want an 800×600 JPEG", info.ThumbnailURL, ti)
		}
		thumb := matrixDownload(ctx, t, u, &event.MessageEventContent{URL: info.ThumbnailURL})
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(thumb))
		if err != nil || cfg.Width != 800 || cfg.Height != 600 || len(thumb) != ti.Size {
			t.Fatalf("the thumbnail is %d bytes, %d×%d (%v); info says %d bytes", len(thumb), cfg.Width, cfg.Height, err, ti.Size)
		}
		t.Logf("1200×900 PNG (%d bytes): 800×600 JPEG preview of %d bytes", len(img), len(thumb))
	})

	t.Run("VoiceFromXMPP", func(t *testing.T) {
		voice := oggOpus(2500)
		getURL := peerUpload(ctx, t, bobC, web, "2026-12-07_voice.oga", "audio/ogg", voice)
		cur := u.Cursor(room)
		shareFile(uniq("voice"), getURL, "")
		evt := waitMatrixFile(ctx, t, u, room, cur, s.ghost(bob))
		content := evt.Content.AsMessage()
		raw := evt.Content.Raw
		if content.MsgType != event.MsgAudio || content.Info == nil || content.Info.MimeType != "audio/ogg" {
			t.Fatalf("voice content %s info %+v, want m.audio audio/ogg", content.MsgType, content.Info)
		}
		if _, ok := raw["org.matrix.msc3245.voice"]; !ok {
			t.Errorf("no org.matrix.msc3245.voice in %v", raw)
		}
		audio, _ := raw["org.matrix.msc1767.audio"].(map[string]any)
		if d, _ := audio["duration"].(float64); d != 2500 {
			t.Errorf("org.matrix.msc1767.audio = %v, want duration 2500", raw["org.matrix.msc1767.audio"])
		}
		// Other audio stays plain audio.
		mp3 := append([]byte("ID3\x03\x00\x00\x00\x00\x00\x00"), randomBytes(t, 2000)...)
		getURL = peerUpload(ctx, t, bobC, web, "song.mp3", "audio/mpeg", mp3)
		cur = u.Cursor(room)
		shareFile(uniq("song"), getURL, "")
		evt = waitMatrixFile(ctx, t, u, room, cur, s.ghost(bob))
		if _, ok := evt.Content.Raw["org.matrix.msc3245.voice"]; ok || evt.Content.AsMessage().MsgType != event.MsgAudio {
			t.Errorf("an mp3 became %s, voice flag %v", evt.Content.AsMessage().MsgType, ok)
		}
	})

	var voiceEvent *event.Event
	t.Run("VoiceFromMatrix", func(t *testing.T) {
		voice := oggOpus(1800)
		up, err := u.Client.UploadBytesWithName(ctx, voice, "audio/ogg", "Voice message.ogg")
		if err != nil {
			t.Fatal(err)
		}
		cur := bobC.Cursor()
		content := &event.MessageEventContent{
			MsgType: event.MsgAudio, Body: "Voice message", URL: up.ContentURI.CUString(),
			Info:         &event.FileInfo{MimeType: "audio/ogg", Size: len(voice), Duration: 1800},
			MSC1767Audio: &event.MSC1767Audio{Duration: 1800, Waveform: []int{}},
			MSC3245Voice: &event.MSC3245Voice{},
		}
		resp, err := u.Client.SendMessageEvent(ctx, room, event.EventMessage, content)
		if err != nil {
			t.Fatal(err)
		}
		m, _, err := bobC.WaitMessage(ctx, cur, func(m harness.ReceivedMessage) bool {
			return !m.Carbon && strings.HasPrefix(m.From, alice.String()+"/") && m.OOB != ""
		})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(m.OOB, ".ogg") {
			t.Errorf("the voice message's URL %q does not end in .ogg", m.OOB)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.OOB, nil)
		if err != nil {
			t.Fatal(err)
		}
		hr, err := web.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		hr.Body.Close()
		// Prosody serves the type the slot asked for; ejabberd its own by the extension
		// (application/ogg for .ogg, application/octet-stream for .oga).
		if ct := hr.Header.Get("Content-Type"); !strings.HasPrefix(ct, "audio/ogg") && !strings.HasPrefix(ct, "application/ogg") {
			t.Errorf("the upload service serves the voice message as %q, want audio/ogg or application/ogg", ct)
		}
		voiceEvent = &event.Event{ID: resp.EventID}
	})

	t.Run("FileCorrectionFromXMPP", func(t *testing.T) {
		first := peerUpload(ctx, t, bobC, web, "draft.pdf", "application/pdf", randomBytes(t, 1500))
		id := uniq("doc")
		cur := u.Cursor(room)
		shareFile(id, first, "")
		orig := waitMatrixFile(ctx, t, u, room, cur, s.ghost(bob))
		final := randomBytes(t, 1700)
		second := peerUpload(ctx, t, bobC, web, "final.pdf", "application/pdf", final)
		shareFile(uniq("doc-fix"), second, fmt.Sprintf(`<replace xmlns="urn:xmpp:message-correct:0" id=%q/>`, id))
		sctx, scancel := stepCtx()
		defer scancel()
		evt, _, err := u.WaitEvent(sctx, room, cur, func(e *event.Event) bool {
			return e.Type == event.EventMessage && e.Content.AsMessage().RelatesTo.GetReplaceID() == orig.ID
		})
		if err != nil {
			t.Fatalf("no Matrix edit of the file: %v", err)
		}
		nc := evt.Content.AsMessage().NewContent
		if nc == nil || nc.MsgType != event.MsgFile || nc.Body != "final.pdf" || nc.URL == "" || nc.Info == nil || nc.Info.Size != len(final) {
			t.Fatalf("the edit's new content is %+v, want the file final.pdf", nc)
		}
		if got := matrixDownload(ctx, t, u, nc); !bytes.Equal(got, final) {
			t.Fatal("the corrected file in Matrix differs from the one shared")
		}
	})

	t.Run("FileEditFromMatrixRefused", func(t *testing.T) {
		if voiceEvent == nil {
			t.Fatal("needs the voice message of VoiceFromMatrix")
		}
		cur := u.Cursor(room)
		bobCur := bobC.Cursor()
		edit := &event.MessageEventContent{MsgType: event.MsgAudio, Body: "renamed voice message"}
		edit.SetEdit(voiceEvent.ID)
		if _, err := u.Client.SendMessageEvent(ctx, room, event.EventMessage, edit); err != nil {
			t.Fatal(err)
		}
		sctx, scancel := stepCtx()
		defer scancel()
		if _, _, err := u.WaitEvent(sctx, room, cur, func(e *event.Event) bool {
			return e.Sender == s.bot && strings.Contains(harness.Body(e), "edits of files cannot be bridged")
		}); err != nil {
			t.Fatalf("no notice for the edit of a file: %v", err)
		}
		// A later message is the barrier: the contact got it, and nothing for the edit before it.
		after := uniq("after the refused edit")
		if _, err := u.Client.SendText(ctx, room, after); err != nil {
			t.Fatal(err)
		}
		if _, _, err := bobC.WaitMessage(ctx, bobCur, bodyIs(after)); err != nil {
			t.Fatal(err)
		}
		for _, m := range bobC.Received()[bobCur:] {
			if !m.Carbon && m.Body != after {
				t.Errorf("the contact received %q for a refused edit", m.Body)
			}
		}
	})
}

// testImage is a w×h PNG with a gradient.
func testImage(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{R: uint8(x), G: uint8(y), B: uint8(x + y), A: 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// oggOpus is a minimal Ogg Opus stream of ms milliseconds (an OpusHead page with a 312-sample
// pre-skip, then a last page whose granule position ends it), enough for type detection and the
// duration; not playable audio.
func oggOpus(ms int) []byte {
	page := func(granule uint64, payload []byte) []byte {
		p := []byte("OggS\x00\x02")
		p = binary.LittleEndian.AppendUint64(p, granule)
		p = append(p, make([]byte, 12)...)
		p = append(p, 1, byte(len(payload)))
		return append(p, payload...)
	}
	head := []byte("OpusHead\x01\x01")
	head = binary.LittleEndian.AppendUint16(head, 312)
	head = append(head, 0x80, 0xbb, 0, 0, 0, 0, 0)
	out := page(0, head)
	out = append(out, bytes.Repeat([]byte{0x55}, 4000)...)
	return append(out, page(uint64(312+ms*48), []byte("end"))...)
}

package bridge

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// fileIntent streams into a real temporary file, as bridgev2 does with
// requireFile, and uploads small files (previews) as an encrypted room
// would: the mxc URI inside the returned file info.
type fileIntent struct {
	bridgev2.MatrixAPI
	encrypted bool
	small     [][]byte
}

func (f *fileIntent) UploadMedia(_ context.Context, _ id.RoomID, data []byte, _, _ string) (id.ContentURIString, *event.EncryptedFileInfo, error) {
	f.small = append(f.small, data)
	if f.encrypted {
		return "", &event.EncryptedFileInfo{URL: "mxc://localhost/thumb"}, nil
	}
	return "mxc://localhost/thumb", nil, nil
}

func (f *fileIntent) UploadMediaStream(_ context.Context, _ id.RoomID, _ int64, _ bool, cb bridgev2.FileStreamCallback) (id.ContentURIString, *event.EncryptedFileInfo, error) {
	tmp, err := os.CreateTemp("", "mediaimage-test-*")
	if err != nil {
		return "", nil, err
	}
	defer func() { _ = tmp.Close(); _ = os.Remove(tmp.Name()) }()
	if _, err := cb(tmp); err != nil {
		return "", nil, err
	}
	if f.encrypted {
		return "", &event.EncryptedFileInfo{URL: "mxc://localhost/file"}, nil
	}
	return "mxc://localhost/file", nil, nil
}

// TestImagePreview: an image from XMPP gets its size and a preview, as
// thumbnail_url in a plain room and thumbnail_file in an encrypted one; a
// small image gets its size only.
func TestImagePreview(t *testing.T) {
	img := func(w, h int) []byte {
		m := image.NewNRGBA(image.Rect(0, 0, w, h))
		for i := range m.Pix {
			m.Pix[i] = byte(i)
		}
		m.Set(0, 0, color.White)
		var b bytes.Buffer
		if err := png.Encode(&b, m); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	big, small := img(1000, 500), img(300, 200)
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big.png" {
			_, _ = w.Write(big)
		} else {
			_, _ = w.Write(small)
		}
	}))
	defer ts.Close()
	c := mediaTestClient("", 10)
	c.main.Config.MediaPrivateHosts = []string{"127.0.0.1"}
	c.main.Config.MediaInsecureTLSHosts = []string{"127.0.0.1"}
	portal := &bridgev2.Portal{Portal: &database.Portal{MXID: "!room:localhost"}}
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		path      string
		encrypted bool
		w, h      int
		thumb     bool
	}{
		{"plain room", "/big.png", false, 1000, 500, true},
		{"encrypted room", "/big.png", true, 1000, 500, true},
		{"small image", "/small.png", false, 300, 200, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			intent := &fileIntent{encrypted: tc.encrypted}
			content := c.mediaContent(ctx, portal, intent, &xmppclient.File{URL: ts.URL + tc.path, Link: ts.URL + tc.path})
			info := content.Info
			if content.MsgType != event.MsgImage || info == nil || info.Width != tc.w || info.Height != tc.h {
				t.Fatalf("content %s info %+v, want an image %d×%d", content.MsgType, info, tc.w, tc.h)
			}
			if !tc.thumb {
				if info.ThumbnailInfo != nil || len(intent.small) != 0 {
					t.Errorf("a preview for a small image: %+v", info.ThumbnailInfo)
				}
				return
			}
			ti := info.ThumbnailInfo
			if ti == nil || ti.Width != 800 || ti.Height != 400 || ti.MimeType != "image/jpeg" || len(intent.small) != 1 || ti.Size != len(intent.small[0]) {
				t.Fatalf("preview info %+v, %d uploads", ti, len(intent.small))
			}
			if tc.encrypted && (info.ThumbnailFile == nil || info.ThumbnailFile.URL != "mxc://localhost/thumb" || info.ThumbnailURL != "") {
				t.Errorf("encrypted room: thumbnail_url %q, thumbnail_file %+v", info.ThumbnailURL, info.ThumbnailFile)
			}
			if !tc.encrypted && (info.ThumbnailURL != "mxc://localhost/thumb" || info.ThumbnailFile != nil) {
				t.Errorf("plain room: thumbnail_url %q, thumbnail_file %+v", info.ThumbnailURL, info.ThumbnailFile)
			}
		})
	}
}

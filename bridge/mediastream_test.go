package bridge

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/mxomemo/xmpp-bridge/xmpp/aesgcm"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// streamIntent is the part of bridgev2.MatrixAPI mediaContent uses: files
// must come through UploadMediaStream in pieces, never as one []byte.
type streamIntent struct {
	bridgev2.MatrixAPI
	got    bytes.Buffer
	writes int
	failed error
}

func (s *streamIntent) UploadMedia(context.Context, id.RoomID, []byte, string, string) (id.ContentURIString, *event.EncryptedFileInfo, error) {
	panic("a file went to Matrix whole in memory")
}

func (s *streamIntent) UploadMediaStream(_ context.Context, _ id.RoomID, _ int64, requireFile bool, cb bridgev2.FileStreamCallback) (id.ContentURIString, *event.EncryptedFileInfo, error) {
	if !requireFile {
		panic("not streamed through a file")
	}
	s.got.Reset()
	res, err := cb(writerFunc(func(p []byte) (int, error) { s.writes++; return s.got.Write(p) }))
	if err != nil {
		s.failed = err
		return "", nil, err
	}
	return id.ContentURIString("mxc://localhost/" + res.FileName), nil, nil
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestMediaStreamed: files from XMPP reach Matrix through a stream (in
// pieces, through a file), plain and aesgcm alike, with the same limits;
// an aesgcm file whose tag does not verify becomes a notice.
func TestMediaStreamed(t *testing.T) {
	plain := make([]byte, 3<<20)
	_, _ = rand.Read(plain[1024:])
	copy(plain, "\x89PNG\r\n\x1a\n")
	ct, key, err := aesgcm.Encrypt(plain)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(ct)
	bad[len(bad)/2] ^= 1
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/plain.png":
			_, _ = io.Copy(w, bytes.NewReader(plain))
		case "/enc.png":
			_, _ = w.Write(ct)
		case "/bad.png":
			_, _ = w.Write(bad)
		}
	}))
	defer ts.Close()
	c := mediaTestClient("", 10)
	c.main.Config.MediaPrivateHosts = []string{"127.0.0.1"}
	c.main.Config.MediaInsecureTLSHosts = []string{"127.0.0.1"}
	portal := &bridgev2.Portal{Portal: &database.Portal{MXID: "!room:localhost"}}
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		file   *xmppclient.File
		limit  int
		notice bool
	}{
		{"plain", &xmppclient.File{URL: ts.URL + "/plain.png", Link: ts.URL + "/plain.png"}, 10, false},
		{"aesgcm", &xmppclient.File{URL: ts.URL + "/enc.png", Key: &key}, 10, false},
		{"aesgcm with a bad tag", &xmppclient.File{URL: ts.URL + "/bad.png", Key: &key}, 10, true},
		{"over the limit", &xmppclient.File{URL: ts.URL + "/plain.png", Link: ts.URL + "/plain.png"}, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.main.Config.MaxMediaSizeMB = tc.limit
			intent := &streamIntent{}
			content := c.mediaContent(ctx, portal, intent, tc.file)
			if tc.notice {
				if content.MsgType != event.MsgNotice || content.URL != "" {
					t.Fatalf("got %+v, want a notice", content)
				}
				if intent.failed == nil {
					t.Error("the upload was not aborted")
				}
				return
			}
			if content.MsgType != event.MsgImage || content.Info.MimeType != "image/png" || content.Info.Size != len(plain) {
				t.Fatalf("content %s %+v", content.MsgType, content.Info)
			}
			if !bytes.Equal(intent.got.Bytes(), plain) {
				t.Fatal("the uploaded file differs")
			}
			if intent.writes < 2 {
				t.Errorf("%d writes for a 3 MiB file: not streamed", intent.writes)
			}
		})
	}
}

package e2e

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/xmpp/aesgcm"
	"github.com/mxomemo/xmpp-bridge/xmpp/httpupload"
)

// TestMedia shares files both ways through Prosody's HTTP file share, served over HTTPS with the
// self-signed localhost certificate that the login names as its insecure host: in a plaintext
// chat as an https link with XEP-0066, and in an OMEMO chat as an XEP-0454 aesgcm:// link inside
// the encrypted body, whose plaintext never reaches the server.
//
// It runs on Prosody and on ejabberd (its HTTP upload, served over HTTPS with the self-signed
// certificate).
func TestMedia(t *testing.T) {
	for _, server := range []string{"prosody", "ejabberd"} {
		t.Run(server, func(t *testing.T) {
			t.Parallel()
			runMedia(t, server)
		})
	}
}

func runMedia(t *testing.T, server string) {
	s := newStackOn(t, server, "sqlite", testenv.ProsodyOptions{UploadHTTPS: true, UploadSizeLimit: 2 << 20}, func(c *harness.BridgeConfig) {
		c.Network = map[string]any{"max_media_size_mb": 1}
	})
	alice, alicePW := s.account(t, "malice")
	bob, bobPW := s.account(t, "mbob")
	carol, carolPW := s.account(t, "mcarol")
	u := s.matrixUser(t, "mxmedia")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	mgmt := s.loginUser(ctx, t, u, alice, alicePW)
	web := trustingClient(t, s.xmpp.CertFile())

	// The plaintext chat with bob.
	bobC := s.peer(t, bob, bobPW, "media")
	hello := uniq("hello from bob")
	if err := bobC.SendChat(ctx, alice, "", "", hello); err != nil {
		t.Fatal(err)
	}
	bobRoom := waitPortalMessage(ctx, t, s, u, mgmt, bob, hello)

	t.Run("MatrixToXMPP", func(t *testing.T) {
		img := pngBytes(t)
		cur := bobC.Cursor()
		sendMatrixFile(ctx, t, u, bobRoom, img, "pixel.png", "image/png", event.MsgImage)
		m, _, err := bobC.WaitMessage(ctx, cur, func(m harness.ReceivedMessage) bool {
			return !m.Carbon && strings.HasPrefix(m.From, alice.String()+"/") && m.Body != ""
		})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(m.Body, s.uploadURL()) || m.OOB != m.Body {
			t.Fatalf("body %q, OOB %q: want the same %s… URL", m.Body, m.OOB, s.uploadURL())
		}
		if got := httpGet(ctx, t, web, m.Body); !bytes.Equal(got, img) {
			t.Fatalf("downloaded %d bytes that differ from the %d uploaded", len(got), len(img))
		}
	})

	t.Run("Caption", func(t *testing.T) {
		img := pngBytes(t)
		up, err := u.Client.UploadBytesWithName(ctx, img, "image/png", "cap.png")
		if err != nil {
			t.Fatal(err)
		}
		caption := uniq("look at this")
		cur := bobC.Cursor()
		_, err = u.Client.SendMessageEvent(ctx, bobRoom, event.EventMessage, &event.MessageEventContent{
			MsgType: event.MsgImage, Body: caption, FileName: "cap.png", URL: up.ContentURI.CUString(),
			Info: &event.FileInfo{MimeType: "image/png", Size: len(img)},
		})
		if err != nil {
			t.Fatal(err)
		}
		fromAlice := func(m harness.ReceivedMessage) bool {
			return !m.Carbon && strings.HasPrefix(m.From, alice.String()+"/") && m.Body != ""
		}
		file, next, err := bobC.WaitMessage(ctx, cur, fromAlice)
		if err != nil {
			t.Fatal(err)
		}
		text, _, err := bobC.WaitMessage(ctx, next, fromAlice)
		if err != nil {
			t.Fatal(err)
		}
		if file.OOB == "" || file.OOB != file.Body || !strings.HasSuffix(file.Body, "/cap.png") || text.Body != caption || text.OOB != "" {
			t.Fatalf("file %q (OOB %q) then %q, want the file cap.png then the caption %q", file.Body, file.OOB, text.Body, caption)
		}
	})

	t.Run("XMPPToMatrix", func(t *testing.T) {
		data := randomBytes(t, 3000)
		getURL := peerUpload(ctx, t, bobC, web, "report.pdf", "application/pdf", data)
		cur := u.Cursor(bobRoom)
		raw := fmt.Sprintf(`<message xmlns="jabber:client" type="chat" to="%s" id="%s"><body>%s</body>`+
			`<x xmlns="jabber:x:oob"><url>%s</url></x></message>`, alice, uniq("f"), xmlEscape(getURL), xmlEscape(getURL))
		if err := bobC.SendRaw(ctx, raw); err != nil {
			t.Fatal(err)
		}
		evt := waitMatrixFile(ctx, t, u, bobRoom, cur, s.ghost(bob))
		content := evt.Content.AsMessage()
		if content.MsgType != event.MsgFile || content.Body != "report.pdf" || content.Info == nil || content.Info.Size != len(data) || content.Info.MimeType != "application/pdf" {
			t.Errorf("content %+v info %+v", content, content.Info)
		}
		if got := matrixDownload(ctx, t, u, content); !bytes.Equal(got, data) {
			t.Fatalf("Matrix has %d bytes that differ from the %d shared", len(got), len(data))
		}
	})

	t.Run("Limits", func(t *testing.T) {
		// Larger than the upload service takes (2 MiB): a message status and notice in Matrix.
		cur := u.Cursor(bobRoom)
		bobCur := bobC.Cursor()
		sendMatrixFile(ctx, t, u, bobRoom, randomBytes(t, 3<<20), "big.bin", "application/octet-stream", event.MsgFile)
		// bridgev2 refuses it by the capabilities (the service's limit, known since the first
		// upload), or the bridge by the service's disco#info.
		sctx, scancel := stepCtx()
		defer scancel()
		evt, _, err := u.WaitEvent(sctx, bobRoom, cur, func(e *event.Event) bool {
			b := harness.Body(e)
			return e.Sender == s.bot && strings.Contains(b, "not bridged") && strings.Contains(b, "3.0 MiB") && strings.Contains(b, "2.0 MiB")
		})
		if err != nil {
			t.Fatalf("no notice about the upload limit: %v", err)
		}
		t.Logf("notice: %s", harness.Body(evt))
		// Without size info bridgev2 lets it through; the bridge checks the downloaded size.
		cur = u.Cursor(bobRoom)
		sendMatrixFile(ctx, t, u, bobRoom, randomBytes(t, 3<<20), "big.bin", "", event.MsgFile)
		_, _, err = u.WaitEvent(sctx, bobRoom, cur, func(e *event.Event) bool {
			return e.Sender == s.bot && strings.Contains(harness.Body(e), "file too large: 3.0 MiB, your XMPP server's upload limit is 2.0 MiB")
		})
		if err != nil {
			t.Fatalf("no notice about the upload limit for a file without size info: %v", err)
		}
		if n := len(bobC.Received()) - bobCur; n != 0 {
			t.Errorf("the contact received %d messages for a file that was not sent", n)
		}

		// Larger than network.max_media_size_mb (1 MiB): a notice with the link.
		getURL := peerUpload(ctx, t, bobC, web, "big.bin", "application/octet-stream", randomBytes(t, 1<<20+1000))
		cur = u.Cursor(bobRoom)
		raw := fmt.Sprintf(`<message xmlns="jabber:client" type="chat" to="%s" id="%s"><body>%s</body>`+
			`<x xmlns="jabber:x:oob"><url>%s</url></x></message>`, alice, uniq("f"), xmlEscape(getURL), xmlEscape(getURL))
		if err := bobC.SendRaw(ctx, raw); err != nil {
			t.Fatal(err)
		}
		evt = waitMatrixFile(sctx, t, u, bobRoom, cur, s.ghost(bob))
		notice := evt.Content.AsMessage()
		if notice.MsgType != event.MsgNotice || !strings.Contains(notice.Body, "limit is 1.0 MiB") || !strings.Contains(notice.Body, getURL) {
			t.Errorf("wrong notice for a file above the limit: %s %q", notice.MsgType, notice.Body)
		}
	})

	// The OMEMO chat with carol, whose device is our own omemoxmpp client.
	carolC := s.peer(t, carol, carolPW, "media")
	xc := omemoPeer(ctx, t, carolC, carol, alice)
	sendOMEMO := func(text string) {
		t.Helper()
		out, err := xc.Encrypt(ctx, alice, text)
		if err != nil {
			t.Fatal(err)
		}
		r, err := omemoxmpp.BuildMessage(stanza.Message{To: alice, Type: stanza.ChatMessage}, out)
		if err != nil {
			t.Fatal(err)
		}
		if err := carolC.Session.Send(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	hi := uniq("encrypted hello from carol")
	sendOMEMO(hi)
	carolRoom := waitPortalMessage(ctx, t, s, u, mgmt, carol, hi)

	t.Run("OMEMOMatrixToXMPP", func(t *testing.T) {
		secret := randomBytes(t, 4096)
		cur := carolC.Cursor()
		sendMatrixFile(ctx, t, u, carolRoom, secret, "secret.bin", "application/octet-stream", event.MsgFile)
		m, _, err := carolC.WaitMessage(ctx, cur, func(m harness.ReceivedMessage) bool {
			return !m.Carbon && strings.HasPrefix(m.From, alice.String()+"/") && m.OMEMO != nil && m.OMEMO.Payload != nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if m.OOB != "" || strings.Contains(m.Body, "https://") || strings.Contains(m.Body, "aesgcm://") {
			t.Fatalf("the OMEMO message carries a link in plaintext: body %q, OOB %q", m.Body, m.OOB)
		}
		dec, err := xc.Decrypt(ctx, jid.MustParse(m.From), &omemoxmpp.Received{From: jid.MustParse(m.From), Elements: []*omemo.Encrypted{m.OMEMO}})
		if err != nil {
			t.Fatal(err)
		}
		getURL, key, err := aesgcm.Parse(dec.Body)
		if err != nil {
			t.Fatalf("decrypted body %q: %v", dec.Body, err)
		}
		if !strings.HasPrefix(getURL, s.uploadURL()) {
			t.Errorf("aesgcm link to %s, want %s…", getURL, s.uploadURL())
		}
		ct := httpGet(ctx, t, web, getURL)
		got, err := aesgcm.Open(key, ct)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, secret) {
			t.Fatal("decrypted file differs from the Matrix upload")
		}
		assertNotOnServer(t, s.serverDir(), secret)
	})

	t.Run("OMEMOXMPPToMatrix", func(t *testing.T) {
		secret := pngBytes(t)
		ct, key, err := aesgcm.Encrypt(secret)
		if err != nil {
			t.Fatal(err)
		}
		getURL := peerUpload(ctx, t, carolC, web, "photo.png", "application/octet-stream", ct)
		link, err := aesgcm.Link(getURL, key)
		if err != nil {
			t.Fatal(err)
		}
		cur := u.Cursor(carolRoom)
		sendOMEMO(link)
		evt := waitMatrixFile(ctx, t, u, carolRoom, cur, s.ghost(carol))
		content := evt.Content.AsMessage()
		if content.MsgType != event.MsgImage || content.Info == nil || content.Info.MimeType != "image/png" || content.Info.Size != len(secret) {
			t.Errorf("content %+v info %+v", content, content.Info)
		}
		if got := matrixDownload(ctx, t, u, content); !bytes.Equal(got, secret) {
			t.Fatal("Matrix has a file that differs from the shared one")
		}
		assertNotOnServer(t, s.serverDir(), secret)

		// A link whose key does not fit gives a notice without the key.
		bad, _ := aesgcm.NewKey()
		badLink, err := aesgcm.Link(getURL, bad)
		if err != nil {
			t.Fatal(err)
		}
		cur = u.Cursor(carolRoom)
		sendOMEMO(badLink)
		evt, _, err = u.WaitEvent(ctx, carolRoom, cur, func(e *event.Event) bool {
			return e.Sender == s.ghost(carol) && e.Type == event.EventMessage
		})
		if err != nil {
			t.Fatal(err)
		}
		notice := evt.Content.AsMessage()
		if notice.MsgType != event.MsgNotice || !strings.Contains(notice.Body, "Failed to bridge an encrypted file") || strings.Contains(notice.Body, bad.Fragment()) {
			t.Errorf("wrong notice for a bad key: %s %q", notice.MsgType, notice.Body)
		}
	})
}

// trustingClient is an HTTP client that trusts only the test server's certificate.
func trustingClient(t *testing.T, certFile string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in " + certFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: stepTimeout}
}

func httpGet(ctx context.Context, t *testing.T, c *http.Client, u string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", u, resp.Status, err)
	}
	return data
}

// peerUpload uploads data with the peer's own XEP-0363 service and returns the GET URL.
func peerUpload(ctx context.Context, t *testing.T, p *harness.Peer, web *http.Client, name, mimeType string, data []byte) string {
	t.Helper()
	svc, err := httpupload.Discover(ctx, p.Session, p.JID.Domain())
	if err != nil {
		t.Fatal(err)
	}
	slot, err := httpupload.RequestSlot(ctx, p.Session, svc.JID, httpupload.Request{Filename: name, Size: int64(len(data)), ContentType: mimeType})
	if err != nil {
		t.Fatal(err)
	}
	if err := httpupload.Put(ctx, web, slot, data, mimeType); err != nil {
		t.Fatal(err)
	}
	return slot.GetURL
}

// waitPortalMessage waits for the first message of contact and returns its portal.
func waitPortalMessage(ctx context.Context, t *testing.T, s *stack, u *harness.MatrixUser, mgmt id.RoomID, contact jid.JID, body string) id.RoomID {
	t.Helper()
	room, err := u.FindRoomWith(ctx, s.ghost(contact), mgmt)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := u.WaitEvent(ctx, room, 0, harness.IsMessage(s.ghost(contact), body)); err != nil {
		t.Fatal(err)
	}
	return room
}

// sendMatrixFile uploads data and sends it as a typ message; without mimeType it has no info.
func sendMatrixFile(ctx context.Context, t *testing.T, u *harness.MatrixUser, room id.RoomID, data []byte, name, mimeType string, typ event.MessageType) {
	t.Helper()
	up, err := u.Client.UploadBytesWithName(ctx, data, cmp.Or(mimeType, "application/octet-stream"), name)
	if err != nil {
		t.Fatal(err)
	}
	content := &event.MessageEventContent{MsgType: typ, Body: name, URL: up.ContentURI.CUString()}
	if mimeType != "" {
		content.Info = &event.FileInfo{MimeType: mimeType, Size: len(data)}
	}
	_, err = u.Client.SendMessageEvent(ctx, room, event.EventMessage, content)
	if err != nil {
		t.Fatal(err)
	}
}

func waitMatrixFile(ctx context.Context, t *testing.T, u *harness.MatrixUser, room id.RoomID, cur int, sender id.UserID) *event.Event {
	t.Helper()
	evt, _, err := u.WaitEvent(ctx, room, cur, func(e *event.Event) bool {
		return e.Sender == sender && e.Type == event.EventMessage
	})
	if err != nil {
		t.Fatal(err)
	}
	return evt
}

func matrixDownload(ctx context.Context, t *testing.T, u *harness.MatrixUser, content *event.MessageEventContent) []byte {
	t.Helper()
	uri := content.URL
	if content.File != nil {
		t.Fatal("the portal is not encrypted, yet the file is")
	}
	parsed, err := uri.Parse()
	if err != nil {
		t.Fatalf("content %+v: %v", content, err)
	}
	data, err := u.Client.DownloadBytes(ctx, parsed)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// assertNotOnServer checks that no file the server stores under dir (uploads included) holds
// plaintext.
func assertNotOnServer(t *testing.T, dir string, plaintext []byte) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, plaintext[len(plaintext)-64:]) {
			t.Errorf("the server's %s holds the plaintext of an OMEMO chat's file", path)
		}
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("walking %s: %d files, %v", dir, n, err)
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// pngBytes is a valid PNG with random trailing bytes (after IEND), so each is unique.
func pngBytes(t *testing.T) []byte {
	t.Helper()
	const onePixel = "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89" +
		"\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
	return append([]byte(onePixel), randomBytes(t, 256)...)
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// TestMediaEncryptedRoom shares files both ways through a Megolm-encrypted portal, read and
// written by matrix-nio: the file from Matrix is an encrypted attachment that the bridge decrypts
// before uploading it to XMPP, and the file from XMPP reaches Matrix as an encrypted attachment.
func TestMediaEncryptedRoom(t *testing.T) {
	s := newStackWith(t, "sqlite", testenv.ProsodyOptions{UploadHTTPS: true}, func(c *harness.BridgeConfig) {
		c.EncryptionDefault = true
	})
	alice, alicePW := s.account(t, "ealice")
	bob, bobPW := s.account(t, "ebob")
	u := s.matrixUser(t, "mxemedia")
	nio := testenv.StartMatrixPeer(t, s.dendrite, u.UserID().String(), "matrix-mxemedia-pw")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	mgmt := s.loginUser(ctx, t, u, alice, alicePW)
	web := trustingClient(t, s.prosody.CertFile())
	bobC := s.peer(t, bob, bobPW, "media")
	hello := uniq("hello from bob")
	if err := bobC.SendChat(ctx, alice, "", "", hello); err != nil {
		t.Fatal(err)
	}
	room, err := u.FindRoomWith(ctx, s.ghost(bob), mgmt)
	if err != nil {
		t.Fatal(err)
	}
	nio.WaitMessage(t, string(room), hello, stepTimeout)
	if _, enc := nio.Messages(t, string(room)); !enc {
		t.Fatal("the portal is not encrypted")
	}

	t.Run("MatrixToXMPP", func(t *testing.T) {
		img := pngBytes(t)
		cur := bobC.Cursor()
		nio.SendFile(t, string(room), "pixel.png", "image/png", "m.image", img)
		m, _, err := bobC.WaitMessage(ctx, cur, func(m harness.ReceivedMessage) bool {
			return !m.Carbon && strings.HasPrefix(m.From, alice.String()+"/") && m.Body != ""
		})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(m.Body, s.prosody.UploadURL()) || m.OOB != m.Body {
			t.Fatalf("body %q, OOB %q: want the same %s… URL", m.Body, m.OOB, s.prosody.UploadURL())
		}
		if got := httpGet(ctx, t, web, m.Body); !bytes.Equal(got, img) {
			t.Fatalf("downloaded %d bytes that differ from the %d sent", len(got), len(img))
		}
	})

	t.Run("XMPPToMatrix", func(t *testing.T) {
		data := pngBytes(t)
		getURL := peerUpload(ctx, t, bobC, web, "photo.png", "image/png", data)
		raw := fmt.Sprintf(`<message xmlns="jabber:client" type="chat" to="%s" id="%s"><body>%s</body>`+
			`<x xmlns="jabber:x:oob"><url>%s</url></x></message>`, alice, uniq("f"), xmlEscape(getURL), xmlEscape(getURL))
		if err := bobC.SendRaw(ctx, raw); err != nil {
			t.Fatal(err)
		}
		msg := nio.WaitMessage(t, string(room), "photo.png", stepTimeout)
		if !msg.Encrypted || !msg.Decrypted {
			t.Errorf("the file message is not Megolm-encrypted: %+v", msg)
		}
		f := nio.DownloadFile(t, string(room), msg.EventID)
		if !f.EncryptedFile {
			t.Error("the file is a plain attachment in an encrypted room")
		}
		if f.MsgType != "m.image" || f.MimeType != "image/png" {
			t.Errorf("msgtype %q, mimetype %q", f.MsgType, f.MimeType)
		}
		if !bytes.Equal(f.Data, data) {
			t.Fatalf("Matrix has %d bytes that differ from the %d shared", len(f.Data), len(data))
		}
	})
}

//go:build integration

package httpupload_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/internal/testenv"
	"github.com/mxomemo/xmpp-bridge/xmpp/conn"
	"github.com/mxomemo/xmpp-bridge/xmpp/httpupload"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// Discovery, a slot, the PUT and the GET against Prosody's http_file_share over HTTPS, and its
// refusal of a file above its limit.
func TestProsody(t *testing.T) {
	p := testenv.StartProsody(t, testenv.ProsodyOptions{UploadHTTPS: true, UploadSizeLimit: 1 << 20})
	account := jid.MustParse(p.CreateAccount(t, "uploader", "pw"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := conn.Dial(ctx, conn.Config{JID: account, Password: "pw", Host: p.Host(), Port: uint16(p.Port()), InsecureTLSHosts: []string{p.Domain()}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(nil) }()
	t.Cleanup(func() { _ = s.Close() })

	svc, err := httpupload.Discover(ctx, s, account.Domain())
	if err != nil {
		t.Fatal(err)
	}
	if svc.JID.String() != p.UploadDomain() || svc.MaxSize != 1<<20 {
		t.Fatalf("service %+v, want %s with 1 MiB", svc, p.UploadDomain())
	}
	data := bytes.Repeat([]byte("upload "), 1000)
	slot, err := httpupload.RequestSlot(ctx, s, svc.JID, httpupload.Request{Filename: "a b.txt", Size: int64(len(data)), ContentType: "text/plain"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(slot.PutURL, p.UploadURL()) || !strings.HasPrefix(slot.GetURL, p.UploadURL()) {
		t.Fatalf("slot %+v not under %s", slot, p.UploadURL())
	}
	web := certClient(t, p.CertFile())
	if err := httpupload.Put(ctx, web, slot, data, "text/plain"); err != nil {
		t.Fatal(err)
	}
	resp, err := web.Get(slot.GetURL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("GET returned %d bytes, want the %d uploaded", len(got), len(data))
	}
	// A PUT with other bytes than the slot was for is refused.
	slot2, err := httpupload.RequestSlot(ctx, s, svc.JID, httpupload.Request{Filename: "b.txt", Size: 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := httpupload.Put(ctx, web, slot2, []byte("not ten bytes"), ""); err == nil {
		t.Error("a PUT of the wrong size was accepted")
	}
	if _, err := httpupload.RequestSlot(ctx, s, svc.JID, httpupload.Request{Filename: "big.bin", Size: 2 << 20}); !errors.Is(err, httpupload.ErrTooLarge) {
		t.Errorf("2 MiB slot with a 1 MiB limit: %v", err)
	}
}

func certClient(t *testing.T, certFile string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

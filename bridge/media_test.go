package bridge

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/event"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/aesgcm"
	"github.com/mxomemo/xmpp-bridge/xmpp/httpupload"
	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

func mediaMessage(t *testing.T, body, extra string) *incoming {
	t.Helper()
	raw := `<message xmlns="jabber:client" from="bob@example.org/x" type="chat"><body>` + body + `</body>` + extra + `</message>`
	st, err := stanzabuf.Read(xml.NewDecoder(strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return &incoming{Message: xmppclient.Message{Body: body, Raw: st}}
}

func TestIncomingMedia(t *testing.T) {
	link := "aesgcm://up.example.org/a/b.jpg#" + strings.Repeat("ab", 12) + strings.Repeat("cd", 32)
	oobOf := func(u string) string { return `<x xmlns="jabber:x:oob"><url>` + u + `</url></x>` }
	for _, tc := range []struct {
		name, body, extra string
		omemo             *omemoIncoming
		url               string
		key               bool
	}{
		{name: "oob", body: "https://up.example.org/a/b.png", extra: oobOf("https://up.example.org/a/b.png"), url: "https://up.example.org/a/b.png"},
		{name: "oob differs", body: "https://up.example.org/a/b.png", extra: oobOf("https://up.example.org/other.png")},
		{name: "no oob", body: "https://up.example.org/a/b.png"},
		{name: "text with oob", body: "look at this", extra: oobOf("https://up.example.org/a/b.png")},
		{name: "http", body: "http://up.example.org/a", extra: oobOf("http://up.example.org/a")},
		{name: "aesgcm", body: link, omemo: &omemoIncoming{Trusted: true}, url: "https://up.example.org/a/b.jpg", key: true},
		{name: "aesgcm bad fragment", body: "aesgcm://up.example.org/a#00", omemo: &omemoIncoming{}},
		{name: "aesgcm in text", body: "see " + link, omemo: &omemoIncoming{}},
		{name: "failed decryption", body: link, omemo: &omemoIncoming{Failed: true}},
	} {
		in := mediaMessage(t, tc.body, tc.extra)
		in.OMEMO = tc.omemo
		f := incomingMedia(in)
		switch {
		case tc.url == "" && f != nil:
			t.Errorf("%s: media %+v, want text", tc.name, f)
		case tc.url != "" && f == nil:
			t.Errorf("%s: text, want media", tc.name)
		case f != nil && (f.URL != tc.url || (f.Key != nil) != tc.key):
			t.Errorf("%s: %+v, want %s (key %t)", tc.name, f, tc.url, tc.key)
		}
	}
}

func mediaTestClient(insecureHost string, maxMB int) *Client {
	login := &bridgev2.UserLogin{UserLogin: &database.UserLogin{Metadata: &UserLoginMetadata{InsecureTLSHost: insecureHost}}}
	c := &Client{main: &Connector{}, login: login, account: jid.MustParse("alice@example.org")}
	c.main.Config.MaxMediaSizeMB = maxMB
	return c
}

func TestMediaDownload(t *testing.T) {
	small := bytes.Repeat([]byte("a"), 1000)
	big := bytes.Repeat([]byte("b"), 2<<20)
	ct, key, err := aesgcm.Encrypt(small)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/small":
			_, _ = w.Write(small)
		case "/enc":
			_, _ = w.Write(ct)
		case "/redirect-http":
			http.Redirect(w, r, "http://127.0.0.1/small", http.StatusFound)
		case "/redirect-host":
			http.Redirect(w, r, "https://localhost"+r.Host[strings.LastIndexByte(r.Host, ':'):]+"/small", http.StatusFound)
		case "/redirect":
			http.Redirect(w, r, "/small", http.StatusFound)
		case "/big":
			// No Content-Length: the limit applies while reading.
			w.(http.Flusher).Flush()
			_, _ = w.Write(big)
		default:
			http.NotFound(w, r)
		}
	}))
	defer ts.Close()
	ctx := context.Background()
	// The admin lists the test server (on loopback, self-signed).
	trusted := mediaTestClient("", 1)
	trusted.main.Config.MediaPrivateHosts = []string{"127.0.0.1"}
	trusted.main.Config.MediaInsecureTLSHosts = []string{"127.0.0.1"}

	got, err := trusted.media().Download(ctx, &xmppclient.File{URL: ts.URL + "/small"}, trusted.maxMediaSize())
	if err != nil || !bytes.Equal(got, small) {
		t.Fatalf("small: %v", err)
	}
	got, err = trusted.media().Download(ctx, &xmppclient.File{URL: ts.URL + "/enc", Key: &key}, trusted.maxMediaSize())
	if err != nil || !bytes.Equal(got, small) {
		t.Fatalf("aesgcm: %v", err)
	}
	wrong, _ := aesgcm.NewKey()
	if _, err := trusted.media().Download(ctx, &xmppclient.File{URL: ts.URL + "/enc", Key: &wrong}, trusted.maxMediaSize()); !errors.Is(err, aesgcm.ErrDecrypt) {
		t.Errorf("wrong key: %v", err)
	}
	if _, err := trusted.media().Download(ctx, &xmppclient.File{URL: ts.URL + "/big"}, trusted.maxMediaSize()); !errors.Is(err, xmppclient.ErrMediaTooLarge) {
		t.Errorf("2 MiB with a 1 MiB limit: %v", err)
	}
	if _, err := trusted.media().Download(ctx, &xmppclient.File{URL: ts.URL + "/missing"}, trusted.maxMediaSize()); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing: %v", err)
	}
	if _, err := trusted.media().Download(ctx, &xmppclient.File{URL: strings.Replace(ts.URL, "https", "http", 1) + "/small"}, trusted.maxMediaSize()); !errors.Is(err, xmppclient.ErrNotHTTPS) {
		t.Errorf("http: %v", err)
	}
	if got, err := trusted.media().Download(ctx, &xmppclient.File{URL: ts.URL + "/redirect"}, trusted.maxMediaSize()); err != nil || !bytes.Equal(got, small) {
		t.Errorf("redirect on the same host: %v", err)
	}
	if _, err := trusted.media().Download(ctx, &xmppclient.File{URL: ts.URL + "/redirect-http"}, trusted.maxMediaSize()); !errors.Is(err, xmppclient.ErrNotHTTPS) {
		t.Errorf("redirect to http: %v", err)
	}
	if _, err := trusted.media().Download(ctx, &xmppclient.File{URL: ts.URL + "/redirect-host"}, trusted.maxMediaSize()); err == nil || !strings.Contains(err.Error(), "another host") {
		t.Errorf("redirect from an insecure host to another: %v", err)
	}
	// A contact's link into a private network is refused (SSRF) ...
	strict := mediaTestClient("", 0)
	if _, err := strict.media().Download(ctx, &xmppclient.File{URL: ts.URL + "/small"}, strict.maxMediaSize()); !errors.Is(err, xmppclient.ErrPrivateAddress) {
		t.Errorf("loopback link from a contact: %v", err)
	}
	// ... also when the user who logged in chose the name: their account's
	// domain and their login's self-signed host exempt nothing for media.
	self := mediaTestClient("127.0.0.1", 0)
	self.account = jid.MustParse("alice@127.0.0.1")
	if _, err := self.media().Download(ctx, &xmppclient.File{URL: ts.URL + "/small"}, self.maxMediaSize()); !errors.Is(err, xmppclient.ErrPrivateAddress) {
		t.Errorf("loopback link with the login's own domain and insecure host: %v", err)
	}
	// Exempt from the private-address guard by the admin, the self-signed
	// certificate is still refused without a TLS exemption.
	strict.main.Config.MediaPrivateHosts = []string{"127.0.0.1"}
	if _, err := strict.media().Download(ctx, &xmppclient.File{URL: ts.URL + "/small"}, strict.maxMediaSize()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("self-signed without insecure host: %v", err)
	}
	if strict.maxMediaSize() != defaultMaxMediaMB<<20 {
		t.Errorf("default limit %d", strict.maxMediaSize())
	}
	strict.main.Config.InsecureTLSHosts = []string{"127.0.0.1"}
	if _, err := strict.media().Download(ctx, &xmppclient.File{URL: ts.URL + "/small"}, strict.maxMediaSize()); err != nil {
		t.Errorf("host from the config: %v", err)
	}
}

func TestTrustedMediaHost(t *testing.T) {
	// Only the admin's list counts: not the account's domain (alice's is
	// example.org), not the login's self-signed host, not the admin's TLS
	// exemptions.
	c := mediaTestClient("xmpp.lan", 0)
	c.main.Config.MediaPrivateHosts = []string{"upload.lan", "Files.Example.net."}
	c.main.Config.InsecureTLSHosts = []string{"selfsigned.lan"}
	for host, want := range map[string]bool{
		"upload.lan": true, "UPLOAD.LAN.": true, "files.example.net": true,
		"example.org": false, "upload.example.org": false, "xmpp.lan": false, "selfsigned.lan": false,
		"evil-upload.lan": false, "upload.lan.evil.net": false, "10.0.0.1": false,
	} {
		if got := xmppclient.HostListed(c.media().PrivateHosts, host); got != want {
			t.Errorf("private host %q: = %v, want %v", host, got, want)
		}
	}
}

func TestMediaFeatures(t *testing.T) {
	c := mediaTestClient("", 0)
	if f := c.mediaFeatures(dmFeatures); f != dmFeatures {
		t.Error("features changed without a known limit")
	}
	c.uploads.Remember(nil, httpupload.Service{JID: jid.MustParse("upload.example.org"), MaxSize: 5 << 20})
	f := c.mediaFeatures(dmFeatures)
	if f.ID == dmFeatures.ID || f.File[event.MsgImage].MaxSize != 5<<20 || dmFeatures.File[event.MsgImage].MaxSize != 0 {
		t.Errorf("features with a 5 MiB limit: %s %+v", f.ID, f.File[event.MsgImage])
	}
}

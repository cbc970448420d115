package xmppclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mxomemo/xmpp-bridge/xmpp/aesgcm"
	"github.com/mxomemo/xmpp-bridge/xmpp/oob"
	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
)

// Files cross as links (docs/media.md). This file fetches the files XMPP
// messages share: an https URL (the message's body, repeated in its
// XEP-0066 element) or a XEP-0454 aesgcm:// link, decrypted on the way.
// Downloads are streamed: the body goes (decrypted, for aesgcm links)
// straight into the caller's writer, never whole into memory.

// MediaTimeout bounds one upload or download.
const MediaTimeout = 5 * time.Minute

// Errors of the media transfer; the texts reach Matrix users.
var (
	ErrMediaTooLarge = errors.New("file too large")
	ErrNotHTTPS      = errors.New("only https links are downloaded")
)

// Media is the policy of one login's file transfers: which hosts may be
// reached and how.
type Media struct {
	// InsecureTLSHosts are the hosts whose certificate is not verified (the
	// admin's lists; the login's own self-signed host applies to its XMPP
	// connection only).
	InsecureTLSHosts []string
	// PrivateHosts are the hosts that may resolve to private addresses.
	PrivateHosts []string
}

// File is a file shared in an XMPP message.
type File struct {
	// URL is the https URL to fetch.
	URL string
	// Key is set for XEP-0454 links.
	Key *aesgcm.Key
	// Link is what the message carried (for aesgcm with the key: never
	// show it).
	Link string
}

// SharedFile reports whether a message with body (its plaintext, for an
// OMEMO message) in the stanza raw shares a file: its body is exactly an
// aesgcm:// link, or exactly the https URL of its OOB element. The same for
// 1:1 chats and group chats; nil for text.
func SharedFile(body string, raw *stanzabuf.Stanza) *File {
	body = strings.TrimSpace(body)
	if body == "" || strings.ContainsAny(body, " \t\r\n") {
		return nil
	}
	if aesgcm.IsLink(body) {
		getURL, key, err := aesgcm.Parse(body)
		if err != nil {
			return nil
		}
		return &File{URL: getURL, Key: &key, Link: body}
	}
	if raw == nil {
		return nil
	}
	d, ok, err := oob.Parse(raw.Reader())
	if err != nil || !ok || d.URL != body {
		return nil
	}
	if u, err := url.Parse(body); err != nil || u.Scheme != "https" || u.Host == "" {
		return nil
	}
	return &File{URL: body, Link: body}
}

// HTTPClient is the client for one https URL.
func (m *Media) HTTPClient(rawURL string) (*http.Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("bad URL: %w", err)
	}
	if u.Scheme != "https" {
		return nil, ErrNotHTTPS
	}
	insecure := HostListed(m.InsecureTLSHosts, u.Hostname())
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // the private-address check must see the real peer
	tr.DialContext = m.dialer()
	tr.TLSClientConfig = &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Only for a host the admin or the user named, as for XMPP.
		InsecureSkipVerify: insecure, //nolint:gosec
	}
	return &http.Client{
		Transport: tr,
		Timeout:   MediaTimeout,
		// The transport's TLS settings are those of the first host: a
		// redirect must not carry them elsewhere, nor leave https.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			switch {
			case len(via) >= 5:
				return errors.New("too many redirects")
			case req.URL.Scheme != "https":
				return ErrNotHTTPS
			case insecure && !strings.EqualFold(req.URL.Hostname(), u.Hostname()):
				return fmt.Errorf("redirect from %s to another host refused", u.Hostname())
			}
			return nil
		},
	}, nil
}

// Open starts the download of f and checks what can be checked before the
// body: the status and the announced size against limit. Callers close the
// body and read it through Copy.
func (m *Media) Open(ctx context.Context, f *File, limit int64) (*http.Response, error) {
	hc, err := m.HTTPClient(f.URL)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.URL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		// The error names the URL, which has no key (the fragment is not
		// part of f.URL).
		return nil, fmt.Errorf("download failed: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		_ = resp.Body.Close()
		return nil, fmt.Errorf("download failed: HTTP %s", resp.Status)
	}
	if resp.ContentLength > wireLimit(f, limit) {
		_ = resp.Body.Close()
		return nil, fmt.Errorf("%w: %.1f MiB, the bridge's limit is %.1f MiB", ErrMediaTooLarge, float64(resp.ContentLength)/(1<<20), float64(limit)/(1<<20))
	}
	return resp, nil
}

// SizeHint is the file's size from the response's announced length, 0 if
// unknown.
func SizeHint(resp *http.Response, f *File) int64 {
	if resp.ContentLength <= 0 {
		return 0
	}
	if f.Key != nil {
		return max(0, resp.ContentLength-aesgcm.TagSize)
	}
	return resp.ContentLength
}

// wireLimit is how many bytes f may have on the wire for limit bytes of
// file.
func wireLimit(f *File, limit int64) int64 {
	if f.Key != nil {
		return limit + aesgcm.TagSize
	}
	return limit
}

// Copy writes the file from body (decrypted for aesgcm links) to w, failing
// past limit bytes; it returns the file's size and its first head bytes.
// On error, what was written to w must be thrown away: an aesgcm file is
// authenticated only at its end.
func Copy(w io.Writer, body io.Reader, f *File, limit int64, head int) (int64, []byte, error) {
	hw := &headWriter{size: head}
	out := io.MultiWriter(w, hw)
	var dec *aesgcm.Decrypter
	if f.Key != nil {
		var err error
		if dec, err = aesgcm.NewDecrypter(*f.Key, out); err != nil {
			return 0, nil, err
		}
		out = dec
	}
	max := wireLimit(f, limit)
	n, err := io.Copy(out, io.LimitReader(body, max+1))
	if err != nil {
		return 0, nil, fmt.Errorf("download failed: %w", err)
	}
	if n > max {
		return 0, nil, fmt.Errorf("%w: more than the bridge's limit of %.1f MiB", ErrMediaTooLarge, float64(limit)/(1<<20))
	}
	if dec != nil {
		if err := dec.Close(); err != nil {
			return 0, nil, err
		}
		n -= aesgcm.TagSize
	}
	return n, hw.b, nil
}

// headWriter keeps the first size bytes written to it.
type headWriter struct {
	b    []byte
	size int
}

func (h *headWriter) Write(p []byte) (int, error) {
	if room := h.size - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// Download fetches f, at most limit bytes, and decrypts it, into memory
// (for small files and tests; files to Matrix are streamed with Open and
// Copy).
func (m *Media) Download(ctx context.Context, f *File, limit int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, MediaTimeout)
	defer cancel()
	resp, err := m.Open(ctx, f, limit)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, _, err := Copy(&buf, resp.Body, f, limit, 0); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

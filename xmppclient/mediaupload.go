package xmppclient

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/aesgcm"
	"github.com/mxomemo/xmpp-bridge/xmpp/httpupload"
)

// Uploads go to the account's XEP-0363 service: a slot is asked over XMPP,
// the file is PUT over https. For an OMEMO chat the file is first encrypted
// (XEP-0454) into a temporary file, never uploaded in plaintext.

// Uploads caches one login's XEP-0363 service per XMPP session, so that a
// reconnect looks again.
type Uploads struct {
	mu      sync.Mutex
	session *xmpp.Session
	svc     httpupload.Service
	known   bool
}

// Service is the upload service of the account's domain, discovered once
// per session s.
func (u *Uploads) Service(ctx context.Context, s *xmpp.Session, domain jid.JID) (httpupload.Service, error) {
	u.mu.Lock()
	if u.known && u.session == s {
		svc := u.svc
		u.mu.Unlock()
		return svc, nil
	}
	u.mu.Unlock()
	svc, err := httpupload.Discover(ctx, s, domain)
	if err != nil {
		return httpupload.Service{}, err
	}
	u.Remember(s, svc)
	return svc, nil
}

// Remember records svc as the service of session s.
func (u *Uploads) Remember(s *xmpp.Session, svc httpupload.Service) {
	u.mu.Lock()
	u.session, u.svc, u.known = s, svc, true
	u.mu.Unlock()
}

// KnownLimit is the max-file-size of the last service found, 0 if unknown.
func (u *Uploads) KnownLimit() int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.known {
		return 0
	}
	return u.svc.MaxSize
}

// Upload puts size bytes of body on svc under name: a slot asked on s, then
// an https PUT. An error wraps httpupload.ErrTooLarge when the service
// refused the size.
func (m *Media) Upload(ctx context.Context, s *xmpp.Session, svc httpupload.Service, body io.Reader, size int64, name, mimeType string) (httpupload.Slot, error) {
	ctx, cancel := context.WithTimeout(ctx, MediaTimeout)
	defer cancel()
	slot, err := httpupload.RequestSlot(ctx, s, svc.JID, httpupload.Request{Filename: name, Size: size, ContentType: mimeType})
	if err != nil {
		return httpupload.Slot{}, fmt.Errorf("failed to get an upload slot: %w", err)
	}
	hc, err := m.HTTPClient(slot.PutURL)
	if err == nil {
		err = httpupload.PutReader(ctx, hc, slot, body, size, mimeType)
	}
	if err != nil {
		return httpupload.Slot{}, fmt.Errorf("failed to upload the file: %w", err)
	}
	return slot, nil
}

// EncryptToTemp encrypts f under a fresh XEP-0454 key into a temporary
// file, rewound; the caller removes it.
func EncryptToTemp(f io.Reader) (*os.File, aesgcm.Key, error) {
	k, err := aesgcm.NewKey()
	if err != nil {
		return nil, aesgcm.Key{}, err
	}
	tmp, err := os.CreateTemp("", "xmpp-upload-*")
	if err != nil {
		return nil, aesgcm.Key{}, fmt.Errorf("failed to create temp file: %w", err)
	}
	fail := func(err error) (*os.File, aesgcm.Key, error) {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return nil, aesgcm.Key{}, err
	}
	enc, err := aesgcm.NewEncrypter(k, tmp)
	if err != nil {
		return fail(err)
	}
	if _, err := io.Copy(enc, f); err != nil {
		return fail(fmt.Errorf("failed to encrypt file: %w", err))
	}
	if err := enc.Close(); err != nil {
		return fail(err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}
	return tmp, k, nil
}

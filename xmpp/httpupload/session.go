package httpupload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"mellium.im/xmpp"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/disco/items"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/iqwait"
)

// Service is an upload service found by Discover.
type Service struct {
	JID jid.JID
	// MaxSize is the largest file in bytes it accepts, 0 if it named none.
	MaxSize int64
}

// ServiceFromInfo reads a disco#info answer of j: whether it is an upload
// service, and its max-file-size.
func ServiceFromInfo(j jid.JID, info disco.Info) (Service, bool) {
	found := false
	for _, f := range info.Features {
		if f.Var == NS {
			found = true
			break
		}
	}
	if !found {
		return Service{}, false
	}
	svc := Service{JID: j}
	for i := range info.Form {
		ft, _ := info.Form[i].Raw("FORM_TYPE")
		if len(ft) == 0 || ft[0] != NS {
			continue
		}
		if v, ok := info.Form[i].Raw("max-file-size"); ok && len(v) > 0 {
			if n, err := strconv.ParseInt(strings.TrimSpace(v[0]), 10, 64); err == nil && n > 0 {
				svc.MaxSize = n
			}
		}
	}
	return svc, true
}

// Discover finds the upload service of server: the server itself or one of
// its disco#items.
func Discover(ctx context.Context, s *xmpp.Session, server jid.JID) (Service, error) {
	server = server.Domain()
	// One bound for the whole discovery (a few round trips).
	ctx, cancel := iqwait.WithMax(ctx, 2*iqwait.Default)
	defer cancel()
	info, err := disco.GetInfo(ctx, "", server, s)
	if err == nil {
		if svc, ok := ServiceFromInfo(server, info); ok {
			return svc, nil
		}
	}
	iter := disco.FetchItems(ctx, items.Item{JID: server}, s)
	var candidates []jid.JID
	for iter.Next() {
		candidates = append(candidates, iter.Item().JID)
	}
	err = iter.Err()
	_ = iter.Close()
	if err != nil {
		return Service{}, fmt.Errorf("failed to list the services of %s: %w", server, err)
	}
	for _, c := range candidates {
		info, err := disco.GetInfo(ctx, "", c, s)
		if err != nil {
			continue
		}
		if svc, ok := ServiceFromInfo(c, info); ok {
			return svc, nil
		}
	}
	return Service{}, fmt.Errorf("%w (%s)", ErrNoService, server)
}

// RequestSlot asks service for a slot for one file.
func RequestSlot(ctx context.Context, s *xmpp.Session, service jid.JID, req Request) (Slot, error) {
	if req.Filename == "" || req.Size <= 0 {
		return Slot{}, ErrBadRequest
	}
	ctx, cancel := iqwait.Context(ctx)
	defer cancel()
	var slot Slot
	err := s.UnmarshalIQElement(ctx, req.TokenReader(), stanza.IQ{Type: stanza.GetIQ, To: service}, &slot)
	var se stanza.Error
	switch {
	case errors.As(err, &se) && se.Condition == stanza.NotAcceptable:
		return Slot{}, fmt.Errorf("%w: %s refused a slot for %d bytes", ErrTooLarge, service, req.Size)
	case err != nil:
		return Slot{}, fmt.Errorf("failed to request an upload slot from %s: %w", service, err)
	case slot.PutURL == "":
		// An empty result decodes to nothing.
		return Slot{}, ErrBadSlot
	}
	return slot, nil
}

// Put uploads data to the slot with client.
func Put(ctx context.Context, client *http.Client, slot Slot, data []byte, contentType string) error {
	return PutReader(ctx, client, slot, bytes.NewReader(data), int64(len(data)), contentType)
}

// PutReader uploads size bytes read from body to the slot with client, so
// that a large file need not be in memory.
func PutReader(ctx context.Context, client *http.Client, slot Slot, body io.Reader, size int64, contentType string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, slot.PutURL, io.NopCloser(body))
	if err != nil {
		return fmt.Errorf("httpupload: bad put URL: %w", err)
	}
	req.ContentLength = size
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for _, h := range slot.Headers {
		if allowedHeader(h.Name) {
			req.Header.Set(h.Name, h.Value)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("failed to upload to %s: %w", redact(slot.PutURL), err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("upload to %s failed: HTTP %s", redact(slot.PutURL), resp.Status)
	}
	return nil
}

func isHTTPS(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Host != ""
}

// redact drops the query of a PUT URL, which may hold a token.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "the upload URL"
	}
	u.RawQuery, u.Fragment = "", ""
	return u.Redacted()
}

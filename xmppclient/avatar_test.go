package xmppclient

import (
	"context"
	"errors"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/avatar"
)

// An oversized avatar is refused from its metadata alone (no session is
// touched) and reported as a bad image, so that it is not fetched again.
func TestFetchAvatarDataTooLarge(t *testing.T) {
	_, err := FetchAvatarData(context.Background(), nil, jid.MustParse("carol@example.org"), avatar.Info{ID: "a", Bytes: avatar.MaxSize + 1})
	if !errors.Is(err, avatar.ErrTooLarge) {
		t.Errorf("oversized avatar: %v", err)
	}
	var bad *BadImageError
	if !errors.As(err, &bad) || bad.ID != "a" {
		t.Errorf("oversized avatar not reported as a bad image: %v", err)
	}
}

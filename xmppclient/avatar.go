package xmppclient

import (
	"context"
	"errors"
	"fmt"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/avatar"
	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
	"github.com/mxomemo/xmpp-bridge/xmpp/vcardphoto"
)

// BadImageError is an avatar that will not get better by fetching it again
// (too large, not an image): the caller remembers ID as refused.
type BadImageError struct {
	ID  string
	err error
}

func (e *BadImageError) Error() string { return e.err.Error() }
func (e *BadImageError) Unwrap() error { return e.err }

// FetchAvatarMetadata reads contact's XEP-0084 metadata. ok is false when
// the contact publishes none, or the node is missing or closed to us (then
// the vCard photo is the avatar to look at).
func FetchAvatarMetadata(ctx context.Context, s *xmpp.Session, contact jid.JID) (meta avatar.Metadata, ok bool, err error) {
	items, err := pubsub.Items(ctx, s, contact.Bare(), avatar.NSMetadata, 1)
	var se stanza.Error
	switch {
	case errors.As(err, &se):
		return avatar.Metadata{}, false, nil
	case err != nil:
		return avatar.Metadata{}, false, err
	case len(items) == 0:
		return avatar.Metadata{}, false, nil
	}
	meta, err = avatar.ParseMetadata(items[len(items)-1])
	if err != nil {
		return avatar.Metadata{}, false, fmt.Errorf("failed to read avatar metadata of %s: %w", contact, err)
	}
	return meta, true, nil
}

// FetchAvatarData downloads the image info describes from contact's
// XEP-0084 data node. An image over avatar.MaxSize is refused before any
// download.
func FetchAvatarData(ctx context.Context, s *xmpp.Session, contact jid.JID, info avatar.Info) ([]byte, error) {
	if info.Bytes > avatar.MaxSize {
		return nil, &BadImageError{ID: info.ID, err: fmt.Errorf("avatar %s of %s: %w (%d bytes advertised)", info.ID, contact, avatar.ErrTooLarge, info.Bytes)}
	}
	items, err := pubsub.Items(ctx, s, contact.Bare(), avatar.NSData, 0, info.ID)
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		if it.ID == info.ID {
			data, err := avatar.ParseData(it, info.ID)
			if err != nil {
				return nil, &BadImageError{ID: info.ID, err: fmt.Errorf("avatar %s of %s: %w", info.ID, contact, err)}
			}
			return data, nil
		}
	}
	return nil, fmt.Errorf("avatar %s of %s is not in its data node", info.ID, contact)
}

// FetchVCardPhoto is the contact's XEP-0153 vCard photo, for contacts
// without a XEP-0084 avatar.
func FetchVCardPhoto(ctx context.Context, s *xmpp.Session, contact jid.JID) (vcardphoto.Photo, error) {
	return vcardphoto.Fetch(ctx, s, contact)
}

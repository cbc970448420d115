package omemoxmpp

import (
	"context"
	"errors"
	"fmt"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
)

// NodeSubscriber is implemented by a PEP that can subscribe to another
// account's nodes (XEP-0060 subscriptions). SessionPEP does.
type NodeSubscriber interface {
	Subscribe(ctx context.Context, owner jid.JID, node string) error
}

// Subscribe implements NodeSubscriber: the session's bare JID subscribes,
// so the subscription outlives the connection's resource.
func (p SessionPEP) Subscribe(ctx context.Context, owner jid.JID, node string) error {
	return pubsub.Subscribe(ctx, p.Session, owner.Bare(), node, p.Session.LocalAddr().Bare())
}

var _ NodeSubscriber = SessionPEP{}

// ErrCannotSubscribe: the PEP has no way to subscribe.
var ErrCannotSubscribe = errors.New("omemoxmpp: PEP cannot subscribe to nodes")

// SubscribeDevices subscribes to owner's device list nodes (every version
// of the client), so that their changes are pushed without a presence
// subscription, where the server allows it (servers may refuse a
// subscription from a stranger). It returns the versions' errors joined.
func (c *Client) SubscribeDevices(ctx context.Context, owner jid.JID) error {
	sub, ok := c.pep.(NodeSubscriber)
	if !ok {
		return ErrCannotSubscribe
	}
	var errs []error
	for _, v := range c.versions {
		if err := sub.Subscribe(ctx, owner.Bare(), v.DeviceListNode()); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", v, err))
		}
	}
	return errors.Join(errs...)
}

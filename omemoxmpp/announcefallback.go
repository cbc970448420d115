package omemoxmpp

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
)

// NodeConfigurer is implemented by a PEP that can configure the account's
// own nodes (XEP-0060 owner configuration). SessionPEP does.
type NodeConfigurer interface {
	Configure(ctx context.Context, node string, fields ...pubsub.Field) error
}

// Configure implements NodeConfigurer with pubsub.Configure.
func (p SessionPEP) Configure(ctx context.Context, node string, fields ...pubsub.Field) error {
	return pubsub.Configure(ctx, p.Session, jid.JID{}, node, fields...)
}

var _ NodeConfigurer = SessionPEP{}

// publishBundleFallbacks retries the OMEMO 2 bundle after the server
// refused publish-options with pubsub#max_items=max (first), the ways
// servers in use need:
//  1. max_items as a number (services without the "max" keyword);
//  2. no max_items at all (ejabberd 23.01 refuses the field in
//     publish-options, "Unknown field"), then the node configured to hold
//     one item per device where the server allows it (without that, a
//     node of one item would let our bundle evict the bundles of the
//     account's other clients);
//  3. no publish-options at all, and the node configured open.
//
// precondition-not-met is not retried here: the PEP reconfigures the node
// for that itself. It returns nil when one attempt published.
func (c *Client) publishBundleFallbacks(ctx context.Context, node string, publish func([]pubsub.Field) error, err error) error {
	log := zerolog.Ctx(ctx)
	var refused *pubsub.Error
	if !errors.As(err, &refused) || errors.Is(err, pubsub.ErrPreconditionNotMet) {
		return err
	}
	open := pubsub.AccessModel(pubsub.AccessOpen)
	log.Debug().Err(err).Msg("Publishing the OMEMO 2 bundle with max_items=max failed, retrying with a number")
	if err = publish([]pubsub.Field{open, pubsub.MaxItems(BundleMaxItems)}); err == nil {
		return nil
	}
	if !errors.As(err, &refused) || errors.Is(err, pubsub.ErrPreconditionNotMet) {
		return err
	}
	log.Debug().Err(err).Msg("Publishing the OMEMO 2 bundle with max_items failed, retrying without it")
	first := err
	if err = publish([]pubsub.Field{open}); err != nil {
		if !errors.As(err, &refused) || errors.Is(err, pubsub.ErrPreconditionNotMet) {
			return err
		}
		log.Debug().Err(err).Msg("Publishing the OMEMO 2 bundle with publish-options failed, retrying without")
		if err = publish(nil); err != nil {
			return errors.Join(first, err)
		}
		c.configureNode(ctx, node, open)
	}
	c.configureNode(ctx, node, pubsub.MaxItemsMax(), pubsub.MaxItems(BundleMaxItems))
	return nil
}

// configureNode sets a field on our node, trying the alternatives in turn
// when it is refused; failures are logged, not returned: the item is
// published, the configuration only keeps other devices' items around.
func (c *Client) configureNode(ctx context.Context, node string, fields ...pubsub.Field) {
	cfg, ok := c.pep.(NodeConfigurer)
	if !ok {
		return
	}
	var err error
	for _, f := range fields {
		if err = cfg.Configure(ctx, node, f); err == nil {
			return
		}
	}
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Str("node", node).Msg("Failed to configure OMEMO node; other devices' items may be evicted")
	}
}

// announceState is what Announce achieved per version on this connection.
type announceState struct {
	mu      sync.Mutex
	done    map[omemo.Version]bool // bundle published on this connection
	results map[omemo.Version]AnnounceResult
}

// AnnounceResult is one version's last announcement.
type AnnounceResult struct {
	// Err is why the version is not announced; nil when it is.
	Err error
	// At is when the announcement was last tried.
	At time.Time
}

func (a *announceState) setBundled(v omemo.Version) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done == nil {
		a.done = map[omemo.Version]bool{}
	}
	a.done[v] = true
}

func (a *announceState) bundled(v omemo.Version) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.done[v]
}

func (a *announceState) set(v omemo.Version, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.results == nil {
		a.results = map[omemo.Version]AnnounceResult{}
	}
	a.results[v] = AnnounceResult{Err: err, At: time.Now()}
}

// AnnounceStatus returns each version's last announcement on this client
// (empty before Announce).
func (c *Client) AnnounceStatus() map[omemo.Version]AnnounceResult {
	c.ann.mu.Lock()
	defer c.ann.mu.Unlock()
	out := make(map[omemo.Version]AnnounceResult, len(c.ann.results))
	for v, r := range c.ann.results {
		out[v] = r
	}
	return out
}

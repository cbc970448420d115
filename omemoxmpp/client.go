package omemoxmpp

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"sync"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
)

// PEP is the part of XEP-0060/XEP-0163 the package uses. [SessionPEP]
// implements it on a mellium session; tests use an in-memory service.
type PEP interface {
	// Publish publishes payload as item id on node of our own PEP service
	// with the given publish-options, reconfiguring the node when it exists
	// with another configuration.
	Publish(ctx context.Context, node, id string, payload xml.TokenReader, options ...pubsub.Field) error
	// Items returns the items of node of owner's PEP service (all of them,
	// or those with the given ids). A missing node is an error matching
	// stanza.Error{Condition: stanza.ItemNotFound} (or Forbidden).
	Items(ctx context.Context, owner jid.JID, node string, ids ...string) ([]pubsub.Item, error)
}

// SessionPEP is PEP over a mellium session that is being served.
type SessionPEP struct {
	Session *xmpp.Session
}

var _ PEP = SessionPEP{}

// Publish implements PEP with pubsub.PublishReconfigure.
func (p SessionPEP) Publish(ctx context.Context, node, id string, payload xml.TokenReader, options ...pubsub.Field) error {
	_, err := pubsub.PublishReconfigure(ctx, p.Session, node, id, payload, options...)
	return err
}

// Items implements PEP with pubsub.Items.
func (p SessionPEP) Items(ctx context.Context, owner jid.JID, node string, ids ...string) ([]pubsub.Item, error) {
	return pubsub.Items(ctx, p.Session, owner, node, 0, ids...)
}

// Options tune a Client. The zero value is usable.
type Options struct {
	// Label is our device's label in the OMEMO 2 device list (optional).
	Label string
	// Versions are the versions we announce and encrypt with; default both.
	Versions []omemo.Version
	// Misses is the negative cache of failed bundle fetches; share one per
	// account across sessions. Nil: the client makes its own.
	Misses *Misses
	// FetchBudget bounds the bundle fetches of one Prepare together;
	// default PrepareBudget.
	FetchBudget time.Duration
}

// Client is one account's OMEMO device on XMPP: a Manager (set up), its
// Store (for device lists) and the PEP service of the account's session.
// It is cheap: make a new one per connection. Safe for concurrent use as far
// as the Manager and Store are.
type Client struct {
	m        *omemo.Manager
	store    omemo.Store
	pep      PEP
	own      jid.JID
	label    string
	versions []omemo.Version
	misses   *Misses
	budget   time.Duration
	ann      announceState
	// publishing orders our bundle publishes: each bundle is built and
	// published under it, so the one published last is the newest. Two
	// publishes racing (a republish after a consumed prekey, an
	// announcement retry, the daily maintenance) could otherwise leave a
	// bundle built before a prekey was used on the node, naming a prekey
	// we no longer have.
	publishing sync.Mutex
}

// New returns a Client for m (on store, after m.Setup) that talks through pep.
func New(m *omemo.Manager, store omemo.Store, pep PEP, opts Options) (*Client, error) {
	own, err := jid.Parse(m.OwnJID())
	if err != nil {
		return nil, fmt.Errorf("failed to parse own JID %q: %w", m.OwnJID(), err)
	}
	if m.DeviceID() == 0 {
		return nil, omemo.ErrNoIdentity
	}
	vs := opts.Versions
	if len(vs) == 0 {
		vs = []omemo.Version{omemo.V2, omemo.V03}
	}
	for _, v := range vs {
		if !v.Valid() {
			return nil, fmt.Errorf("%w: version %d", errInvalidVersion, int(v))
		}
	}
	misses := opts.Misses
	if misses == nil {
		misses = NewMisses(0, 0)
	}
	budget := opts.FetchBudget
	if budget <= 0 {
		budget = PrepareBudget
	}
	return &Client{m: m, store: store, pep: pep, own: own.Bare(), label: opts.Label, versions: vs, misses: misses, budget: budget}, nil
}

// NewSession is New with SessionPEP{s}.
func NewSession(m *omemo.Manager, store omemo.Store, s *xmpp.Session, opts Options) (*Client, error) {
	return New(m, store, SessionPEP{Session: s}, opts)
}

// Manager returns the client's Manager.
func (c *Client) Manager() *omemo.Manager { return c.m }

// speaks reports whether v is enabled.
func (c *Client) speaks(v omemo.Version) bool {
	for _, x := range c.versions {
		if x == v {
			return true
		}
	}
	return false
}

// isAbsent reports whether err says the node or item does not exist or
// may not be read by us. Prosody answers forbidden for a missing node of an
// account we have no subscription with; OMEMO nodes must be open, so a node
// we may not read is as good as absent.
func isAbsent(err error) bool {
	for _, cond := range []stanza.Condition{stanza.ItemNotFound, stanza.Forbidden, stanza.NotAuthorized} {
		if errors.Is(err, stanza.Error{Condition: cond}) {
			return true
		}
	}
	return false
}

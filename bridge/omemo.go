package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemostore"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// OMEMOConfig is network.omemo in the bridge config.
type OMEMOConfig struct {
	// TrustPolicy is "btbv" (blind trust before verification, the default)
	// or "manual" (new devices stay undecided until trusted by command).
	TrustPolicy string `yaml:"trust_policy"`
	// DeviceLabel is the label of the bridge's device in OMEMO 2 lists.
	DeviceLabel string `yaml:"device_label"`
	// Default encrypts a 1:1 chat from its first message when the contact
	// publishes OMEMO devices (as Conversations, Dino and Gajim do); nil
	// means on. Off: chats are encrypted once the contact sends OMEMO, or
	// by `omemo on`.
	Default *bool `yaml:"default"`
}

// byDefault reports whether chats are encrypted by default.
func (cfg *OMEMOConfig) byDefault() bool { return cfg.Default == nil || *cfg.Default }

// ErrBadTrustPolicy is returned by Validate for an unknown trust policy.
var ErrBadTrustPolicy = errors.New("bridge: network.omemo.trust_policy must be btbv or manual")

func (cfg *OMEMOConfig) validate() error {
	switch cfg.TrustPolicy {
	case "", "btbv", "manual":
		return nil
	}
	return fmt.Errorf("%w (got %q)", ErrBadTrustPolicy, cfg.TrustPolicy)
}

// Policy is the engine's trust policy for the configured name.
func (cfg *OMEMOConfig) Policy() omemo.TrustPolicy {
	if cfg.TrustPolicy == "manual" {
		return omemo.PolicyManual
	}
	return omemo.PolicyBTBV
}

func (cfg *OMEMOConfig) label() string {
	if cfg.DeviceLabel == "" {
		return "Matrix bridge"
	}
	return cfg.DeviceLabel
}

// omemoDB is the connector's side of a login's OMEMO device: the store on
// the bridge database (made once per Client) and when the inbox was last
// swept. The device itself, its session client and its locks are the
// client's (xmppclient.OMEMO).
type omemoDB struct {
	mu        sync.Mutex
	store     *omemostore.Store
	lastSweep time.Time // of the inbox (inbox.go)
}

func (c *Client) omemoStore() *omemostore.Store {
	c.omemoDB.mu.Lock()
	defer c.omemoDB.mu.Unlock()
	if c.omemoDB.store == nil {
		c.omemoDB.store = omemostore.New(c.main.DB, string(c.login.ID))
	}
	return c.omemoDB.store
}

// omemoHooks are what the connector does for the client's OMEMO work:
// key transport messages sent on the session, key change notices posted,
// encryption times measured.
func (c *Client) omemoHooks() xmppclient.OMEMOHooks {
	return xmppclient.OMEMOHooks{
		Send:           c.sendSignal,
		KeyChanged:     c.sendKeyChangeNotice,
		ObserveEncrypt: func(d time.Duration) { c.main.Metrics.ObserveEncrypt(d) },
	}
}

// omemoManager returns the login's Manager, setting it up on first use
// (which generates the identity and device id of a new login).
func (c *Client) omemoManager(ctx context.Context) (*omemo.Manager, error) {
	return c.omemo.Open(ctx, c.omemoStore(), c.account, c.main.Config.OMEMO.Policy())
}

// omemoClient returns the OMEMO client of the current session, or nil.
func (c *Client) omemoClient() *omemoxmpp.Client {
	return c.omemo.Client()
}

// omemoConnect has the client prepare our device on a fresh session
// (xmppclient.OMEMO.Connect: keys maintained, bundles published before our
// id is added to both device lists), before the initial presence.
// Failures are logged: the login still works, and encrypted chats report
// the problem per message; a failed announcement is retried while the
// session lasts and shown in the bridge state.
func (c *Client) omemoConnect(ctx context.Context, s *xmpp.Session) {
	log := zerolog.Ctx(ctx)
	m, err := c.omemoManager(ctx)
	if err != nil {
		log.Err(err).Msg("OMEMO is not available for this login")
		return
	}
	announceErr, err := c.omemo.Connect(ctx, s, c.omemoStore(), c.main.Config.OMEMO.label())
	if err != nil {
		log.Err(err).Msg("Failed to start OMEMO client")
		return
	}
	if announceErr != nil {
		// One version may be up: keep going with it, and retry the rest
		// while the session lasts (omemoannounce.go), visibly.
		log.Err(announceErr).Msg("Failed to announce OMEMO device")
		go c.retryAnnounce(context.WithoutCancel(ctx), s)
	} else {
		log.Info().Uint32("omemo_device_id", m.DeviceID()).Msg("OMEMO device announced")
	}
	c.requeuePending(ctx)
	c.main.keys.Keep(log.WithContext(c.main.backgroundCtx()), &c.omemo, func() bool { return c.currentSession() != nil })
}

// omemoUnannounce removes our device from the account's device lists
// before a logout, so that contacts stop encrypting for a device that will
// no longer exist. The account's other devices stay listed.
func (c *Client) omemoUnannounce(ctx context.Context) {
	s := c.currentSession()
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c.omemo.Unannounce(ctx, s, c.omemoStore())
}

// omemoDelete forgets the login's OMEMO device (keys, sessions, trust,
// inbox), so that a later login of the account starts with a new device.
func (c *Client) omemoDelete(ctx context.Context) {
	if err := c.omemoStore().Delete(ctx); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to delete OMEMO state")
	}
	if err := deleteInbox(ctx, c.main.DB, c.login.ID); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to delete OMEMO inbox")
	}
	c.omemo.Forget()
}

// handlePEPEvent handles a PEP device-list notification and reports whether
// st was one (then it needs no other handling).
func (c *Client) handlePEPEvent(ctx context.Context, ev pubsub.Event) bool {
	log := zerolog.Ctx(ctx)
	upd, err := xmppclient.DeviceListNotification(ev, c.account)
	switch {
	case errors.Is(err, omemoxmpp.ErrNotDeviceList):
		return false
	case err != nil:
		log.Warn().Err(err).Msg("Ignoring malformed OMEMO device list notification")
		return true
	}
	if c.omemoClient() == nil {
		return true
	}
	if upd.JID.Bare().Equal(c.account.Bare()) {
		// Putting our device back in the list publishes: not in the
		// incoming loop.
		c.omemo.Enqueue(ctx, xmppclient.OMEMOTask{Kind: xmppclient.TaskOwnList, OwnList: upd})
		return true
	}
	if !c.deviceListWanted(ctx, upd.JID) {
		log.Debug().Stringer("jid", upd.JID).Msg("Ignoring OMEMO device list of a stranger")
		return true
	}
	ch, err := c.omemo.ApplyDeviceList(ctx, c.omemoStore(), upd)
	if err != nil {
		log.Warn().Err(err).Stringer("jid", upd.JID).Msg("Failed to handle OMEMO device list update")
		return true
	}
	log.Debug().Stringer("jid", upd.JID).Str("omemo_version", upd.Version.String()).
		Int("devices", len(upd.Devices)).Msg("OMEMO device list update")
	if ch.Before != nil {
		c.noticeDeviceChange(ctx, upd.JID, ch.Before, ch.After)
	}
	return true
}

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

// omemoState is one login's OMEMO device: the Manager on the bridge
// database (made once per Client) and the networking client of the current
// XMPP session.
type omemoState struct {
	mu      sync.Mutex
	store   *omemostore.Store
	manager *omemo.Manager
	oc      *omemoxmpp.Client // nil until the first session set it up
	// resets decides when a broken session is replaced (the client's
	// policy, its own lock).
	resets xmppclient.SessionResets
	// maintaining is set while the daily key maintenance is armed.
	maintaining bool
	lastSweep   time.Time // of the inbox (decrypt.go)
	// fetches is when contacts' and room members' device lists were last
	// fetched (xmppclient.DeviceFetches).
	fetches xmppclient.DeviceFetches
	// worker runs the login's OMEMO network work (omemoworker.go).
	worker *xmppclient.OMEMOQueue
	// misses remembers failed bundle fetches across sessions.
	misses *omemoxmpp.Misses

	// ratchet serialises the login's ratchet work (its lock is held in
	// xmppclient, never here).
	ratchet xmppclient.Ratchet
}

func (c *Client) omemoStore() *omemostore.Store {
	c.omemo.mu.Lock()
	defer c.omemo.mu.Unlock()
	if c.omemo.store == nil {
		c.omemo.store = omemostore.New(c.main.DB, string(c.login.ID))
	}
	return c.omemo.store
}

// omemoManager returns the login's Manager, setting it up on first use
// (which generates the identity and device id of a new login).
func (c *Client) omemoManager(ctx context.Context) (*omemo.Manager, error) {
	store := c.omemoStore()
	c.omemo.mu.Lock()
	defer c.omemo.mu.Unlock()
	if c.omemo.manager != nil {
		return c.omemo.manager, nil
	}
	m := omemo.NewManager(store, c.account.Bare().String(), omemo.Options{Policy: c.main.Config.OMEMO.Policy()})
	if err := m.Setup(ctx); err != nil {
		return nil, fmt.Errorf("failed to set up OMEMO device: %w", err)
	}
	c.omemo.manager = m
	return m, nil
}

// omemoClient returns the OMEMO client of the current session, or nil.
func (c *Client) omemoClient() *omemoxmpp.Client {
	c.omemo.mu.Lock()
	defer c.omemo.mu.Unlock()
	return c.omemo.oc
}

// omemoConnect prepares our device on a fresh session
// (xmppclient.ConnectOMEMO: keys maintained, bundles published before our
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
	c.omemo.mu.Lock()
	if c.omemo.misses == nil {
		c.omemo.misses = omemoxmpp.NewMisses(0, 0)
	}
	misses := c.omemo.misses
	c.omemo.mu.Unlock()
	oc, announceErr, err := xmppclient.ConnectOMEMO(ctx, &c.omemo.ratchet, m, c.omemoStore(), s,
		omemoxmpp.Options{Label: c.main.Config.OMEMO.label(), Misses: misses})
	if err != nil {
		log.Err(err).Msg("Failed to start OMEMO client")
		return
	}
	c.omemo.mu.Lock()
	c.omemo.oc = oc
	c.omemo.mu.Unlock()
	if announceErr != nil {
		// One version may be up: keep going with it, and retry the rest
		// while the session lasts (omemoannounce.go), visibly.
		log.Err(announceErr).Msg("Failed to announce OMEMO device")
		go c.retryAnnounce(context.WithoutCancel(ctx), s, oc)
	} else {
		log.Info().Uint32("omemo_device_id", m.DeviceID()).Msg("OMEMO device announced")
	}
	c.requeuePending(ctx)
	c.omemo.mu.Lock()
	start := !c.omemo.maintaining
	c.omemo.maintaining = true
	c.omemo.mu.Unlock()
	if start {
		c.omemoScheduleMaintenance(log.WithContext(c.main.backgroundCtx()))
	}
}

// omemoMaintenanceInterval is how often keys are maintained while a login
// stays connected (signed prekey rotation is weekly; reconnects do it too).
const omemoMaintenanceInterval = 24 * time.Hour

// omemoScheduleMaintenance arms the next daily maintenance. It is a timer,
// not a goroutine: an idle login holds no goroutine for it.
func (c *Client) omemoScheduleMaintenance(ctx context.Context) {
	time.AfterFunc(omemoMaintenanceInterval, func() { c.omemoMaintain(ctx) })
}

// omemoMaintain rotates the signed prekey when due and republishes, and
// arms the next run, for as long as the login's device exists.
func (c *Client) omemoMaintain(ctx context.Context) {
	c.omemo.mu.Lock()
	m, oc := c.omemo.manager, c.omemo.oc
	if m == nil {
		c.omemo.maintaining = false
	}
	c.omemo.mu.Unlock()
	if m == nil {
		return
	}
	defer c.omemoScheduleMaintenance(ctx)
	if oc == nil || c.currentSession() == nil {
		return
	}
	stepCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := xmppclient.MaintainKeys(stepCtx, &c.omemo.ratchet, m, oc); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("OMEMO key maintenance failed")
	}
}

// omemoUnannounce removes our device from the account's device lists
// before a logout, so that contacts stop encrypting for a device that will
// no longer exist. The account's other devices stay listed.
func (c *Client) omemoUnannounce(ctx context.Context) {
	s, oc := c.currentSession(), c.omemoClient()
	if s == nil || oc == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	xmppclient.Unannounce(ctx, s, oc, c.account, c.omemoStore())
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
	c.omemo.mu.Lock()
	c.omemo.manager, c.omemo.oc = nil, nil
	c.omemo.mu.Unlock()
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
	oc := c.omemoClient()
	if oc == nil {
		return true
	}
	if upd.JID.Bare().Equal(c.account.Bare()) {
		// Putting our device back in the list publishes: not in the
		// incoming loop.
		c.omemoEnqueue(ctx, xmppclient.OMEMOTask{Kind: xmppclient.TaskOwnList, OwnList: upd})
		return true
	}
	if !c.deviceListWanted(ctx, upd.JID) {
		log.Debug().Stringer("jid", upd.JID).Msg("Ignoring OMEMO device list of a stranger")
		return true
	}
	ch, err := xmppclient.ApplyDeviceList(ctx, oc, c.omemoStore(), upd)
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

package xmppclient

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
)

// OMEMO is one login's OMEMO device on the XMPP side: the engine's Manager,
// the current session's omemoxmpp client, the ratchet lock, the record of
// session resets, the device-list fetches and the bounded queue of network
// work. The connector asks it to decrypt (omemodecrypt.go) and encrypt
// (omemodevices.go) and gets typed results; every lock is held in here,
// none at a call site. The zero value is ready; Open sets the device up.
type OMEMO struct {
	mu          sync.Mutex
	manager     *omemo.Manager
	account     jid.JID
	policy      omemo.TrustPolicy
	oc          *omemoxmpp.Client // nil until the first session set it up
	misses      *omemoxmpp.Misses // failed bundle fetches, across sessions
	maintaining bool              // kept by a KeyMaintenance
	loopCtx     context.Context   // of the connection, set by Start
	hooks       OMEMOHooks
	queue       *OMEMOQueue // made by the first task: most logins queue little

	ratchet ratchetLock
	resets  SessionResets
	fetches DeviceFetches
	runner  LazyWorker // runs the queue while tasks wait
}

// OMEMOHooks are what the connector does for the client's OMEMO work.
type OMEMOHooks struct {
	// Send writes a key transport message (a reset, a heartbeat).
	Send func(context.Context, Signal) error
	// KeyChanged posts the notice a TaskKeyChanged asks for.
	KeyChanged func(context.Context, OMEMOTask)
	// ObserveEncrypt is told how long each encryption held the lock.
	ObserveEncrypt func(time.Duration)
}

// ErrOMEMOUnavailable: the login's device is not set up (yet).
var ErrOMEMOUnavailable = errors.New("OMEMO is not set up for this login")

// SetHooks sets what the connector does for the client's OMEMO work.
func (o *OMEMO) SetHooks(h OMEMOHooks) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.hooks = h
	o.ratchet.ObserveEncrypt = h.ObserveEncrypt
}

// Open returns the login's Manager on store, setting the device up on
// first use (which generates the identity and device id of a new login).
func (o *OMEMO) Open(ctx context.Context, store omemo.Store, account jid.JID, policy omemo.TrustPolicy) (*omemo.Manager, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.manager != nil {
		return o.manager, nil
	}
	m := omemo.NewManager(store, account.Bare().String(), omemo.Options{Policy: policy})
	if err := m.Setup(ctx); err != nil {
		return nil, fmt.Errorf("failed to set up OMEMO device: %w", err)
	}
	o.manager, o.account, o.policy = m, account.Bare(), policy
	return m, nil
}

// Client is the OMEMO client of the current session, or nil.
func (o *OMEMO) Client() *omemoxmpp.Client {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.oc
}

// session is the session's client and our account.
func (o *OMEMO) session() (*omemoxmpp.Client, jid.JID) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.oc, o.account
}

// Use makes oc the session's OMEMO client (Connect does; tests give their
// own).
func (o *OMEMO) Use(oc *omemoxmpp.Client) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.oc = oc
}

// Forget drops the device and the session's client (a logout, a login
// taken over): the next Open starts from the store.
func (o *OMEMO) Forget() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.manager, o.oc = nil, nil
}

// Connect prepares the device on a fresh session s (connectOMEMO), after
// Open. It returns announceErr when the announcement failed: the client is
// in use anyway (one version may be up), and the caller retries
// (RetryAnnounce).
func (o *OMEMO) Connect(ctx context.Context, s *xmpp.Session, store omemo.Store, label string) (announceErr, err error) {
	o.mu.Lock()
	m := o.manager
	if o.misses == nil {
		o.misses = omemoxmpp.NewMisses(0, 0)
	}
	misses := o.misses
	o.mu.Unlock()
	if m == nil {
		return nil, ErrOMEMOUnavailable
	}
	oc, announceErr, err := connectOMEMO(ctx, &o.ratchet, m, store, s, omemoxmpp.Options{Label: label, Misses: misses})
	if err != nil {
		return nil, err
	}
	o.Use(oc)
	return announceErr, nil
}

// RetryAnnounce announces the session's device again while current says
// the session lasts (retryAnnounce), each outcome told to tried.
func (o *OMEMO) RetryAnnounce(ctx context.Context, current func() bool, tried func(error)) {
	if oc := o.Client(); oc != nil {
		retryAnnounce(ctx, oc, func() bool { return current() && o.Client() == oc }, tried)
	}
}

// maintain runs the key maintenance once (KeyMaintenance), when a session
// is up; it reports whether the device still exists to be kept.
func (o *OMEMO) maintain(ctx context.Context, connected func() bool) bool {
	o.mu.Lock()
	m, oc := o.manager, o.oc
	o.mu.Unlock()
	if m == nil {
		return false
	}
	if !connected() || oc == nil {
		return true
	}
	stepCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := maintainKeys(stepCtx, &o.ratchet, m, oc); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("OMEMO key maintenance failed")
	}
	return true
}

// Refresh fetches contact's device lists when they are older than
// DeviceListMaxAge (DeviceFetches.Refresh) and returns the devices.
func (o *OMEMO) Refresh(ctx context.Context, contact jid.JID) (omemoxmpp.DeviceSet, error) {
	oc := o.Client()
	if oc == nil {
		return nil, ErrOMEMOUnavailable
	}
	return o.fetches.Refresh(ctx, oc, contact), nil
}

// RefreshMembers fetches the device lists of room members not fetched in
// the last MemberDevicesTTL.
func (o *OMEMO) RefreshMembers(ctx context.Context, members []jid.JID) {
	if oc := o.Client(); oc != nil {
		o.fetches.RefreshMembers(ctx, oc, members)
	}
}

// EncryptChat encrypts body for every trusted device of contact and of our
// own account (encryptChat: lists fetched first, the lock held for the
// encryption alone). It never falls back to plaintext.
func (o *OMEMO) EncryptChat(ctx context.Context, contact jid.JID, body string) (*omemoxmpp.Outgoing, error) {
	oc := o.Client()
	if oc == nil {
		return nil, ErrOMEMOUnavailable
	}
	return encryptChat(ctx, &o.ratchet, &o.fetches, oc, contact, body)
}

// EncryptGroup encrypts body for every trusted device of the room's members
// (their real bare JIDs) and our own other devices (encryptGroup).
func (o *OMEMO) EncryptGroup(ctx context.Context, room jid.JID, members []jid.JID, body string) (*omemoxmpp.Outgoing, error) {
	oc := o.Client()
	if oc == nil {
		return nil, ErrOMEMOUnavailable
	}
	return encryptGroup(ctx, &o.ratchet, &o.fetches, oc, room, members, body)
}

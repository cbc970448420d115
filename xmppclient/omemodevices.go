package xmppclient

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
)

// Device discovery that does not depend on a presence subscription: the
// server pushes a contact's device lists only to subscribers (and to
// clients whose +notify it matched with a subscription), so a contact's
// new device would stay unknown and the next message not encrypted for
// it. The client fetches the lists itself: before the first message to a
// contact (a chat starting), before encrypting when the lists it has are
// older than DeviceListMaxAge, when a message comes from a device not in
// them (LearnSender), and for room members who are not contacts
// (RefreshMembers). None of it runs under the ratchet lock: it waits on
// the contacts' servers.

const (
	// DeviceListMaxAge bounds how old the device lists a message is
	// encrypted with may be. One fetch per contact per this much time is
	// cheap; a new device of the contact misses at most the messages of
	// this window.
	DeviceListMaxAge = 10 * time.Minute
	// MemberDevicesTTL is how long a room member's fetched device lists
	// are used before they are fetched again: members who are not
	// contacts send no device-list notifications.
	MemberDevicesTTL = 10 * time.Minute
	// memberFetchBudget bounds RefreshMembers as a whole, and
	// memberFetchParallel is how many lists it fetches at once: members
	// on servers that do not answer must not hold a message for minutes.
	memberFetchBudget   = 20 * time.Second
	memberFetchParallel = 4
)

// DeviceFetches is one login's record of which device lists it fetched
// when, and whose pushes it asked for. The zero value is ready to use;
// its maps are made on first use (most logins never encrypt).
type DeviceFetches struct {
	mu         sync.Mutex
	contacts   map[string]time.Time // last fetch per contact (bare JID)
	members    map[string]time.Time // last fetch per room member
	subscribed map[string]bool      // contacts whose pushes were asked for
}

// due reports whether the lists of key in m are older than ttl, and if
// so records a fetch now when mark is set.
func (f *DeviceFetches) due(m *map[string]time.Time, key string, ttl time.Duration, mark bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	at, ok := (*m)[key]
	if ok && time.Since(at) < ttl {
		return false
	}
	if mark {
		if *m == nil {
			*m = map[string]time.Time{}
		}
		(*m)[key] = time.Now()
	}
	return true
}

// Refresh fetches contact's device lists when they were not fetched in
// DeviceListMaxAge and returns the device set; on failure the stored
// lists stay in use. The first time it also asks the contact's server to
// push the lists without a presence subscription, where it allows that.
func (f *DeviceFetches) Refresh(ctx context.Context, oc *omemoxmpp.Client, contact jid.JID) omemoxmpp.DeviceSet {
	if set, fetched := f.refreshDue(ctx, oc, contact); fetched {
		return set
	}
	set, _ := oc.Devices(ctx, contact)
	return set
}

// refreshDue is Refresh without reading the stored lists when they are
// not due: encryptChat reads them in Prepare (read here too, they were two
// queries per message more).
func (f *DeviceFetches) refreshDue(ctx context.Context, oc *omemoxmpp.Client, contact jid.JID) (omemoxmpp.DeviceSet, bool) {
	key := contact.Bare().String()
	if !f.due(&f.contacts, key, DeviceListMaxAge, false) {
		return nil, false
	}
	f.mu.Lock()
	subscribe := !f.subscribed[key]
	if subscribe {
		if f.subscribed == nil {
			f.subscribed = map[string]bool{}
		}
		f.subscribed[key] = true
	}
	f.mu.Unlock()
	if subscribe {
		go func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if err := oc.SubscribeDevices(sctx, contact); err != nil {
				zerolog.Ctx(ctx).Debug().Err(err).Stringer("contact", contact).Msg("Server refused a subscription to the contact's OMEMO device lists")
			}
		}()
	}
	set, err := oc.FetchDevices(ctx, contact)
	if err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Stringer("contact", contact).Msg("Failed to fetch OMEMO device lists; using the stored ones")
		return set, true
	}
	f.due(&f.contacts, key, 0, true)
	return set, true
}

// Forget makes the next Refresh of contact fetch the lists again.
func (f *DeviceFetches) Forget(contact jid.JID) {
	f.mu.Lock()
	delete(f.contacts, contact.Bare().String())
	f.mu.Unlock()
}

// LearnSender fetches sender's device lists when a message came from a
// device they do not list (the push that would have told us did not
// come), so that the reply is encrypted for it too. The check is a read of
// the stored lists (cached) on the caller's goroutine; only a fetch gets a
// goroutine of its own, detached from ctx's cancellation.
func (f *DeviceFetches) LearnSender(ctx context.Context, oc *omemoxmpp.Client, sender jid.JID, device uint32) {
	if device == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	// Lists not stored yet are fetched by the Refresh below (Devices would
	// fetch them, then Refresh again).
	if listed, _, err := oc.Listed(ctx, sender, device); err == nil && listed {
		return
	}
	go func() {
		f.Forget(sender)
		f.Refresh(ctx, oc, sender)
	}()
}

// RefreshMembers fetches the device lists of room members not fetched in
// the last MemberDevicesTTL, a few at a time and within a budget.
func (f *DeviceFetches) RefreshMembers(ctx context.Context, oc *omemoxmpp.Client, members []jid.JID) {
	ctx, cancel := context.WithTimeout(ctx, memberFetchBudget)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	sema := make(chan struct{}, memberFetchParallel)
	for _, m := range members {
		if !f.due(&f.members, m.Bare().String(), MemberDevicesTTL, true) {
			continue
		}
		sema <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sema; wg.Done() }()
			if _, err := oc.FetchDevices(ctx, m); err != nil {
				zerolog.Ctx(ctx).Debug().Err(err).Stringer("member", m).Msg("Failed to fetch a group chat member's OMEMO devices")
			}
		}()
	}
}

// encryptChat encrypts body for every trusted device of contact and of our
// own account: device lists and bundles are fetched first, and the ratchet
// lock is held for the encryption alone, so that a contact's server that
// does not answer delays this message only, not the login's other chats or
// its incoming messages. It never falls back to plaintext.
func encryptChat(ctx context.Context, r *ratchetLock, f *DeviceFetches, oc *omemoxmpp.Client, contact jid.JID, body string) (*omemoxmpp.Outgoing, error) {
	f.refreshDue(ctx, oc, contact)
	enc, err := r.Encrypt(ctx, oc, oc.Prepare(ctx, contact), body)
	if errors.Is(err, omemoxmpp.ErrNoDevices) {
		// A list stored empty is not fetched again by Prepare, and contacts
		// without a presence subscription send no notifications: look again.
		if _, ferr := oc.FetchDevices(ctx, contact); ferr == nil {
			enc, err = r.Encrypt(ctx, oc, oc.Prepare(ctx, contact), body)
		}
	}
	return enc, err
}

// encryptGroup encrypts body for every trusted device of the room's
// members (their real bare JIDs) and our own other devices: the members'
// lists fetched first, the ratchet lock held for the encryption alone.
func encryptGroup(ctx context.Context, r *ratchetLock, f *DeviceFetches, oc *omemoxmpp.Client, room jid.JID, members []jid.JID, body string) (*omemoxmpp.Outgoing, error) {
	f.RefreshMembers(ctx, oc, members)
	return r.Encrypt(ctx, oc, oc.PrepareGroup(ctx, room, members), body)
}

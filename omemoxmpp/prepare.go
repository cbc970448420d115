package omemoxmpp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemo"
)

// Encryption in two steps. Everything that needs the network (device lists,
// bundles of devices without a session) is fetched by Prepare, without any
// lock a caller holds for its ratchet work; EncryptPrepared then only reads
// and writes the store. A contact whose server never answers costs a send
// at most the fetch budget, once: failed bundle fetches are remembered
// (Misses), and a send fetches at most MaxBundleFetches bundles.

// MaxBundleFetches bounds the bundle fetches of one Prepare: a contact that
// lists a thousand devices must not cost a thousand round trips per
// message. Devices past the bound are skipped for this message
// (ErrTooManyDevices in Outgoing.Errors) and tried by the next ones.
const MaxBundleFetches = 16

// bundleFetchParallel is how many bundles Prepare fetches at once.
const bundleFetchParallel = 4

// PrepareBudget bounds the bundle fetches of one Prepare together.
const PrepareBudget = 20 * time.Second

// ErrTooManyDevices: the device was not tried for this message because the
// send had already fetched MaxBundleFetches bundles.
var ErrTooManyDevices = errors.New("omemoxmpp: too many new devices for one message")

// Prepared is what encrypting one message needs from the network. Use it
// once, soon (a session may have changed meanwhile: a device whose bundle
// was not fetched because it had a session is then skipped).
type Prepared struct {
	targets []target
	ownDevs DeviceSet
	lastErr error
	err     error
	single  bool
	envTo   string
	name    string
	bundles map[missKey]*omemo.Bundle
	errs    map[omemo.Address]error
}

// Prepare fetches what encrypting a message for the bare JID to (and our
// own other devices) needs.
func (c *Client) Prepare(ctx context.Context, to jid.JID) *Prepared {
	to = to.Bare()
	return c.prepare(ctx, []jid.JID{to}, "", to.String(), true)
}

// PrepareGroup fetches what encrypting a group chat message for the
// members' devices needs (see EncryptGroup).
func (c *Client) PrepareGroup(ctx context.Context, room jid.JID, members []jid.JID) *Prepared {
	seen := map[string]bool{c.own.String(): true}
	var to []jid.JID
	for _, m := range members {
		if b := m.Bare(); !seen[b.String()] {
			seen[b.String()] = true
			to = append(to, b)
		}
	}
	name := room.Bare().String()
	if len(to) == 0 {
		return &Prepared{err: fmt.Errorf("%w: no member in %s", ErrNoDevices, name)}
	}
	return c.prepare(ctx, to, name, name, false)
}

// EncryptPrepared encrypts body with what p prepared. It does no network
// round trip. Errors as Encrypt.
func (c *Client) EncryptPrepared(ctx context.Context, p *Prepared, body string) (*Outgoing, error) {
	return c.encrypt(ctx, p, &body)
}

func (c *Client) prepare(ctx context.Context, to []jid.JID, envTo, name string, single bool) *Prepared {
	p := &Prepared{envTo: envTo, name: name, single: single,
		bundles: map[missKey]*omemo.Bundle{}, errs: map[omemo.Address]error{}}
	own := c.own.String()
	for _, j := range to {
		devs, err := c.Devices(ctx, j)
		if err != nil {
			p.lastErr = err
			zerolog.Ctx(ctx).Warn().Err(err).Stringer("jid", j).Msg("Failed to get OMEMO devices")
			if len(devs) == 0 {
				continue
			}
		}
		p.targets = append(p.targets, target{jid: j.String(), devs: devs})
	}
	if len(to) != 1 || to[0].String() != own {
		// On failure our other devices miss this message; the contact
		// still gets it.
		var err error
		if p.ownDevs, err = c.Devices(ctx, c.own); err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to get own OMEMO devices")
		}
	}
	var need []planned
	for _, pl := range plan(p.targets, own, p.ownDevs, c.m.DeviceID()) {
		has, err := c.m.HasSession(ctx, pl.v, pl.addr)
		if err != nil {
			p.errs[pl.addr] = fmt.Errorf("failed to look up session with %s: %w", pl.addr, err)
			continue
		}
		if has {
			continue
		}
		if len(need) >= MaxBundleFetches {
			p.errs[pl.addr] = ErrTooManyDevices
			continue
		}
		need = append(need, pl)
	}
	c.fetchBundles(ctx, p, need)
	return p
}

// fetchBundles fetches the bundles of need, a few at a time, within
// PrepareBudget.
func (c *Client) fetchBundles(ctx context.Context, p *Prepared, need []planned) {
	if len(need) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.budget)
	defer cancel()
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		sema = make(chan struct{}, bundleFetchParallel)
	)
	for _, pl := range need {
		wg.Add(1)
		sema <- struct{}{}
		go func() {
			defer func() { <-sema; wg.Done() }()
			j, err := jid.Parse(pl.addr.JID)
			var b *omemo.Bundle
			if err == nil {
				b, err = c.FetchBundle(ctx, j, pl.addr.Device, pl.v)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				p.errs[pl.addr] = err
				return
			}
			p.bundles[missKey{pl.addr, pl.v}] = b
		}()
	}
	wg.Wait()
}

// recipient returns addr as a Recipient with the bundle prepared for it,
// if any. It does not ask for the session again: the Manager encrypts over
// the session when there is one (one created since Prepare included) and
// falls back to the bundle, and a session gone since Prepare, with no
// bundle, fails there with omemo.ErrNoSession (see sessionGone).
func (p *Prepared) recipient(addr omemo.Address, v omemo.Version) (omemo.Recipient, error) {
	if err := p.errs[addr]; err != nil {
		return omemo.Recipient{Address: addr}, err
	}
	return omemo.Recipient{Address: addr, Bundle: p.bundles[missKey{addr, v}]}, nil
}

// sessionGone is the error of a device whose session Prepare found and the
// encryption did not.
func sessionGone(addr omemo.Address, v omemo.Version, err error) error {
	return fmt.Errorf("%w: %s (%s): session gone since the message was prepared: %w", ErrNoBundle, addr, v, err)
}

package omemoxmpp

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"sort"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/omemo"
)

// Outgoing is an encrypted message ready to be put into a stanza with
// BuildMessage: one <encrypted/> element per version used.
type Outgoing struct {
	// Elements holds at most one element per version (OMEMO 2 first).
	Elements []*omemo.Encrypted
	// Recipients are the devices that got a key, per version.
	Recipients map[omemo.Version][]omemo.Address
	// Errors are the devices (the contact's and our own) that were skipped,
	// with the reason; the message was still encrypted for the others.
	Errors map[omemo.Address]error
}

// planned is one recipient device with the version chosen for it.
type planned struct {
	addr    omemo.Address
	v       omemo.Version
	contact bool // a device of a recipient JID, not one of our own others
}

// target is one recipient JID with its devices.
type target struct {
	jid  string
	devs DeviceSet
}

// plan chooses, per device of the targets and of our own account (without
// our device), the version to use: OMEMO 2 where a device speaks both.
func plan(targets []target, own string, ownDevs DeviceSet, ownDevice uint32) []planned {
	var out []planned
	add := func(j string, set DeviceSet, isContact bool) {
		ids := make([]uint32, 0, len(set))
		for id := range set {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] })
		for _, id := range ids {
			if j == own && id == ownDevice {
				continue
			}
			if v := set.Preferred(id); v != 0 {
				out = append(out, planned{addr: omemo.Address{JID: j, Device: id}, v: v, contact: isContact})
			}
		}
	}
	self := false
	for _, t := range targets {
		add(t.jid, t.devs, true)
		self = self || t.jid == own
	}
	if !self {
		add(own, ownDevs, false)
	}
	return out
}

// Encrypt encrypts body for every device of the bare JID to and for our own
// other devices, and returns the elements to send (see BuildMessage).
// Missing bundles are fetched; per device the version it speaks is used
// (OMEMO 2 when it speaks both). Devices that fail are in Outgoing.Errors.
// When no device of the contact could be encrypted for, it fails with a
// *DeviceError (errors.Is ErrNoTrustedDevices), or ErrNoDevices when the
// contact has no device at all; never send such a message in plaintext.
// It is Prepare followed by EncryptPrepared: callers that serialise their
// ratchet work should call those two and lock around the second only.
func (c *Client) Encrypt(ctx context.Context, to jid.JID, body string) (*Outgoing, error) {
	return c.EncryptPrepared(ctx, c.Prepare(ctx, to), body)
}

// EncryptGroup encrypts body for a group chat (a non-anonymous MUC): for
// every device of the members' real bare JIDs and our own other devices.
// The OMEMO 2 envelope names room in <to/>, as XEP-0420 asks for groups.
// It fails like Encrypt when no member's device could be encrypted for;
// members that were missed are in Outgoing.Errors (or have no devices).
// It is PrepareGroup followed by EncryptPrepared.
func (c *Client) EncryptGroup(ctx context.Context, room jid.JID, members []jid.JID, body string) (*Outgoing, error) {
	return c.EncryptPrepared(ctx, c.PrepareGroup(ctx, room, members), body)
}

// EncryptEmpty builds an empty OMEMO message (no payload) for the given
// device of the bare JID to, e.g. the heartbeat Message.SendHeartbeat asks
// for. It is sent without body, EME or fallback (see BuildMessage).
func (c *Client) EncryptEmpty(ctx context.Context, to jid.JID, device uint32, v omemo.Version) (*Outgoing, error) {
	addr := omemo.Address{JID: to.Bare().String(), Device: device}
	r, err := c.recipient(ctx, addr, v)
	if err != nil {
		return nil, err
	}
	enc, errs, err := c.m.EncryptEmpty(ctx, v, []omemo.Recipient{r})
	if err != nil {
		if e := errs[addr]; e != nil {
			err = e
		}
		return nil, fmt.Errorf("failed to encrypt empty message for %s: %w", addr, err)
	}
	return &Outgoing{Elements: []*omemo.Encrypted{enc}, Recipients: map[omemo.Version][]omemo.Address{v: {addr}}}, nil
}

// Heartbeat is EncryptEmpty over an existing session only: it does no
// network round trip, and fails with omemo.ErrNoSession when there is no
// session with the device.
func (c *Client) Heartbeat(ctx context.Context, to jid.JID, device uint32, v omemo.Version) (*Outgoing, error) {
	addr := omemo.Address{JID: to.Bare().String(), Device: device}
	has, err := c.m.HasSession(ctx, v, addr)
	if err != nil {
		return nil, fmt.Errorf("failed to look up session with %s: %w", addr, err)
	}
	if !has {
		return nil, fmt.Errorf("%w: %s", omemo.ErrNoSession, addr)
	}
	return c.EncryptEmpty(ctx, to, device, v)
}

// recipient returns addr as a Recipient, with its bundle fetched when there
// is no session yet.
func (c *Client) recipient(ctx context.Context, addr omemo.Address, v omemo.Version) (omemo.Recipient, error) {
	r := omemo.Recipient{Address: addr}
	has, err := c.m.HasSession(ctx, v, addr)
	if err != nil {
		return r, fmt.Errorf("failed to look up session with %s: %w", addr, err)
	}
	if has {
		return r, nil
	}
	j, err := jid.Parse(addr.JID)
	if err != nil {
		return r, fmt.Errorf("failed to parse JID %q: %w", addr.JID, err)
	}
	r.Bundle, err = c.FetchBundle(ctx, j, addr.Device, v)
	return r, err
}

// encrypt encrypts body (nil: an empty message) for what p prepared. It
// does no network round trip.
func (c *Client) encrypt(ctx context.Context, p *Prepared, body *string) (*Outgoing, error) {
	if p.err != nil {
		return nil, p.err
	}
	targets, envTo, name := p.targets, p.envTo, p.name
	recipients := plan(targets, c.own.String(), p.ownDevs, c.m.DeviceID())
	hasContact := false
	for _, p := range recipients {
		hasContact = hasContact || p.contact
	}
	if !hasContact {
		if p.lastErr != nil && p.single {
			return nil, p.lastErr
		}
		return nil, fmt.Errorf("%w: %s", ErrNoDevices, name)
	}

	out := &Outgoing{Recipients: map[omemo.Version][]omemo.Address{}, Errors: map[omemo.Address]error{}}
	byVersion := map[omemo.Version][]omemo.Recipient{}
	for _, pl := range recipients {
		r, err := p.recipient(pl.addr, pl.v)
		if err != nil {
			out.Errors[pl.addr] = err
			continue
		}
		byVersion[pl.v] = append(byVersion[pl.v], r)
	}
	contacts := map[string]bool{}
	for _, t := range targets {
		contacts[t.jid] = true
	}
	reached := false
	for _, v := range []omemo.Version{omemo.V2, omemo.V03} {
		rs := byVersion[v]
		if len(rs) == 0 {
			continue
		}
		var plaintext []byte
		if body != nil {
			var err error
			if plaintext, err = c.plaintext(v, *body, envTo); err != nil {
				return nil, err
			}
		}
		enc, errs, err := c.m.Encrypt(ctx, v, plaintext, rs)
		for a, e := range errs {
			if errors.Is(e, omemo.ErrNoSession) {
				// Only without a bundle: Prepare had found a session.
				e = sessionGone(a, v, e)
			}
			out.Errors[a] = e
		}
		if errors.Is(err, omemo.ErrNoRecipients) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("failed to encrypt with OMEMO %s: %w", v, err)
		}
		out.Elements = append(out.Elements, enc)
		// Keys come in the order of the recipients that did not fail (0.3
		// keys carry no JID, so this is how they are attributed).
		for _, r := range rs {
			if errs[r.Address] != nil {
				continue
			}
			out.Recipients[v] = append(out.Recipients[v], r.Address)
			if contacts[r.JID] {
				reached = true
			}
		}
	}
	if !reached {
		failed := map[omemo.Address]error{}
		for a, e := range out.Errors {
			if contacts[a.JID] {
				failed[a] = e
			}
		}
		return nil, &DeviceError{JID: name, Devices: failed}
	}
	return out, nil
}

// plaintext is what is encrypted for v: the body itself for 0.3, an SCE
// envelope with a jabber:client <body/>, rpad, from (and to, for groups)
// for OMEMO 2.
func (c *Client) plaintext(v omemo.Version, body, to string) ([]byte, error) {
	if v == omemo.V03 {
		return []byte(body), nil
	}
	var content bytes.Buffer
	content.WriteString(`<body xmlns='` + stanza.NSClient + `'>`)
	if err := xml.EscapeText(&content, []byte(body)); err != nil {
		return nil, fmt.Errorf("failed to escape body: %w", err)
	}
	content.WriteString(`</body>`)
	env := omemo.Envelope{Content: content.Bytes(), From: c.own.String(), To: to}
	data, err := env.Marshal(nil)
	if err != nil {
		return nil, fmt.Errorf("failed to build SCE envelope: %w", err)
	}
	return data, nil
}

// ResetSession forgets the session with device of the bare JID peer for v
// and returns an empty message that starts a new one from the device's
// bundle (send it with BuildMessage). Use it, rate-limited, when a peer's
// messages keep failing with omemo.ErrNoSession or omemo.ErrBadMAC.
func (c *Client) ResetSession(ctx context.Context, peer jid.JID, device uint32, v omemo.Version) (*Outgoing, error) {
	// Fetch first so that a missing bundle does not leave us without any
	// session.
	b, err := c.FetchBundle(ctx, peer, device, v)
	if err != nil {
		return nil, err
	}
	return c.ResetWith(ctx, peer, device, v, b)
}

// ResetWith is ResetSession with the device's bundle b already fetched
// (FetchBundle, outside the caller's ratchet lock): it does no network
// round trip.
func (c *Client) ResetWith(ctx context.Context, peer jid.JID, device uint32, v omemo.Version, b *omemo.Bundle) (*Outgoing, error) {
	addr := omemo.Address{JID: peer.Bare().String(), Device: device}
	if err := c.m.DeleteSession(ctx, v, addr); err != nil {
		return nil, fmt.Errorf("failed to delete session with %s: %w", addr, err)
	}
	enc, errs, err := c.m.EncryptEmpty(ctx, v, []omemo.Recipient{{Address: addr, Bundle: b}})
	if err != nil {
		if e := errs[addr]; e != nil {
			err = e
		}
		return nil, fmt.Errorf("failed to start a new session with %s: %w", addr, err)
	}
	return &Outgoing{Elements: []*omemo.Encrypted{enc}, Recipients: map[omemo.Version][]omemo.Address{v: {addr}}}, nil
}

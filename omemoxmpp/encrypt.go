package omemoxmpp

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"sort"

	"github.com/rs/zerolog"
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
func (c *Client) Encrypt(ctx context.Context, to jid.JID, body string) (*Outgoing, error) {
	to = to.Bare()
	return c.encrypt(ctx, []jid.JID{to}, &body, "", to.String())
}

// EncryptGroup encrypts body for a group chat (a non-anonymous MUC): for
// every device of the members' real bare JIDs and our own other devices.
// The OMEMO 2 envelope names room in <to/>, as XEP-0420 asks for groups.
// It fails like Encrypt when no member's device could be encrypted for;
// members that were missed are in Outgoing.Errors (or have no devices).
func (c *Client) EncryptGroup(ctx context.Context, room jid.JID, members []jid.JID, body string) (*Outgoing, error) {
	seen := map[string]bool{c.own.String(): true}
	var to []jid.JID
	for _, m := range members {
		if b := m.Bare(); !seen[b.String()] {
			seen[b.String()] = true
			to = append(to, b)
		}
	}
	if len(to) == 0 {
		return nil, fmt.Errorf("%w: no member in %s", ErrNoDevices, room.Bare())
	}
	return c.encrypt(ctx, to, &body, room.Bare().String(), room.Bare().String())
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

// encrypt encrypts body (nil: an empty message) for the devices of to and
// our own other devices. envTo is the OMEMO 2 envelope's <to/> ("" for
// 1:1); name is what errors call the conversation.
func (c *Client) encrypt(ctx context.Context, to []jid.JID, body *string, envTo, name string) (*Outgoing, error) {
	own := c.own.String()
	var (
		targets []target
		lastErr error
	)
	for _, j := range to {
		devs, err := c.Devices(ctx, j)
		if err != nil {
			lastErr = err
			zerolog.Ctx(ctx).Warn().Err(err).Stringer("jid", j).Msg("Failed to get OMEMO devices")
			if len(devs) == 0 {
				continue
			}
		}
		targets = append(targets, target{jid: j.String(), devs: devs})
	}
	var ownDevs DeviceSet
	if len(to) != 1 || to[0].String() != own {
		var err error
		if ownDevs, err = c.Devices(ctx, c.own); err != nil {
			// Our other devices miss this message; the contact still gets it.
			zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to get own OMEMO devices")
		}
	}
	recipients := plan(targets, own, ownDevs, c.m.DeviceID())
	hasContact := false
	for _, p := range recipients {
		hasContact = hasContact || p.contact
	}
	if !hasContact {
		if lastErr != nil && len(to) == 1 {
			return nil, lastErr
		}
		return nil, fmt.Errorf("%w: %s", ErrNoDevices, name)
	}

	out := &Outgoing{Recipients: map[omemo.Version][]omemo.Address{}, Errors: map[omemo.Address]error{}}
	byVersion := map[omemo.Version][]omemo.Recipient{}
	for _, p := range recipients {
		r, err := c.recipient(ctx, p.addr, p.v)
		if err != nil {
			out.Errors[p.addr] = err
			continue
		}
		byVersion[p.v] = append(byVersion[p.v], r)
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
	addr := omemo.Address{JID: peer.Bare().String(), Device: device}
	// Fetch first so that a missing bundle does not leave us without any
	// session.
	b, err := c.FetchBundle(ctx, peer, device, v)
	if err != nil {
		return nil, err
	}
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

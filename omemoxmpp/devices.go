package omemoxmpp

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/xmpp/caps"
	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
	"github.com/mxomemo/xmpp-bridge/xmpp/xmltok"
)

// NotifyFeatures are the disco#info features (XEP-0115 +notify) that make
// the server push both device-list nodes of contacts and of our own account.
// The bridge adds them to the Info it advertises in caps.
var NotifyFeatures = []string{
	caps.Notify(omemo.V2.DeviceListNode()),
	caps.Notify(omemo.V03.DeviceListNode()),
}

// DeviceSet is what is known of one JID's devices: which versions each
// device id is listed in.
type DeviceSet map[uint32][]omemo.Version

// Speaks reports whether device is in v's list.
func (s DeviceSet) Speaks(device uint32, v omemo.Version) bool {
	for _, x := range s[device] {
		if x == v {
			return true
		}
	}
	return false
}

// Preferred is the version to encrypt for device with: OMEMO 2 when the
// device is in both lists, 0 when it is in none.
func (s DeviceSet) Preferred(device uint32) omemo.Version {
	switch {
	case s.Speaks(device, omemo.V2):
		return omemo.V2
	case s.Speaks(device, omemo.V03):
		return omemo.V03
	}
	return 0
}

func (s DeviceSet) add(v omemo.Version, devices []omemo.Device) {
	for _, d := range devices {
		if !s.Speaks(d.ID, v) {
			s[d.ID] = append(s[d.ID], v)
		}
	}
}

// parseDeviceListItems picks the device list out of a node's items: the
// item "current", else the last one. No items is an empty list.
func parseDeviceListItems(v omemo.Version, items []pubsub.Item) ([]omemo.Device, error) {
	var pick *pubsub.Item
	for i := range items {
		if items[i].ID == ItemCurrent || pick == nil || pick.ID != ItemCurrent {
			pick = &items[i]
		}
	}
	if pick == nil || !pick.HasPayload() {
		return []omemo.Device{}, nil
	}
	var l omemo.DeviceList
	if err := pick.Decode(&l); err != nil {
		return nil, fmt.Errorf("%w: %s device list: %w", ErrMalformed, v, err)
	}
	if l.Version != v {
		return nil, fmt.Errorf("%w: %s device list in the %s node", ErrMalformed, l.Version, v)
	}
	if l.Devices == nil {
		l.Devices = []omemo.Device{}
	}
	return l.Devices, nil
}

// fetchDeviceList fetches owner's device list for v; a missing (or
// unreadable) node is an empty list.
func (c *Client) fetchDeviceList(ctx context.Context, owner string, v omemo.Version) ([]omemo.Device, error) {
	j, err := jid.Parse(owner)
	if err != nil {
		return nil, fmt.Errorf("failed to parse JID %q: %w", owner, err)
	}
	items, err := c.pep.Items(ctx, j.Bare(), v.DeviceListNode())
	if isAbsent(err) {
		return []omemo.Device{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to fetch %s device list of %s: %w", v, owner, err)
	}
	return parseDeviceListItems(v, items)
}

// FetchDevices fetches the device lists of the bare JID owner for every
// version of the client, stores them, and returns them. Call it when a chat
// is opened: a list stored empty is not fetched again by Encrypt, and
// contacts without presence subscription send no notifications. A version whose
// fetch failed keeps its stored list, and the first error is returned with
// what could be had.
func (c *Client) FetchDevices(ctx context.Context, owner jid.JID) (DeviceSet, error) {
	owner = owner.Bare()
	set := DeviceSet{}
	var firstErr error
	for _, v := range c.versions {
		devices, err := c.fetchDeviceList(ctx, owner.String(), v)
		if err == nil {
			c.forgetNewDevices(ctx, owner, v, devices)
			err = c.store.PutDeviceList(ctx, v, owner.String(), devices)
			if err != nil {
				err = fmt.Errorf("failed to store %s device list of %s: %w", v, owner, err)
			}
		} else if stored, serr := c.store.DeviceList(ctx, v, owner.String()); serr == nil {
			devices = stored
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
		set.add(v, devices)
	}
	return set, firstErr
}

// forgetNewDevices drops the failed bundle fetches of devices that a fetched
// list names and the stored one did not (a list we could not read before,
// or a device announced since): their bundles may be readable now. Devices
// already known keep their entries, so refetching a list does not undo
// the negative cache of a server that never answers.
func (c *Client) forgetNewDevices(ctx context.Context, owner jid.JID, v omemo.Version, devices []omemo.Device) {
	stored, err := c.store.DeviceList(ctx, v, owner.String())
	if err != nil {
		return
	}
	known := make(map[uint32]bool, len(stored))
	for _, d := range stored {
		known[d.ID] = true
	}
	for _, d := range devices {
		if !known[d.ID] {
			c.misses.forget(omemo.Address{JID: owner.String(), Device: d.ID}, v)
		}
	}
}

// Devices returns the stored device lists of owner, fetching them when no
// version has a stored list yet.
func (c *Client) Devices(ctx context.Context, owner jid.JID) (DeviceSet, error) {
	owner = owner.Bare()
	key := owner.String()
	set := DeviceSet{}
	known := false
	for _, v := range c.versions {
		devices, err := c.store.DeviceList(ctx, v, key)
		if err != nil {
			return nil, fmt.Errorf("failed to load %s device list of %s: %w", v, owner, err)
		}
		if devices != nil {
			known = true
		}
		set.add(v, devices)
	}
	if known {
		return set, nil
	}
	return c.FetchDevices(ctx, owner)
}

// Listed reports whether device is in one of the stored device lists of
// owner (known: at least one list is stored). Unlike Devices it builds no
// set and never fetches: for a check per received message.
func (c *Client) Listed(ctx context.Context, owner jid.JID, device uint32) (listed, known bool, err error) {
	key := owner.Bare().String()
	for _, v := range c.versions {
		devices, err := c.store.DeviceList(ctx, v, key)
		if err != nil {
			return false, known, fmt.Errorf("failed to load %s device list of %s: %w", v, key, err)
		}
		known = known || devices != nil
		for _, d := range devices {
			if d.ID == device {
				return true, true, nil
			}
		}
	}
	return false, known, nil
}

// FetchBundle fetches the bundle of device of the bare JID owner for v.
// ErrNoBundle when it is not published (or not readable). A fetch that
// failed is not repeated for a while: ErrRecentlyFailed (wrapping the
// first error) until the negative cache forgets it.
func (c *Client) FetchBundle(ctx context.Context, owner jid.JID, device uint32, v omemo.Version) (*omemo.Bundle, error) {
	addr := omemo.Address{JID: owner.Bare().String(), Device: device}
	if err := c.misses.check(addr, v); err != nil {
		return nil, err
	}
	b, err := c.fetchBundle(ctx, owner, device, v)
	switch {
	case err == nil:
		c.misses.forget(addr, v)
	case errors.Is(err, context.Canceled):
		// Our own caller gave up: says nothing about the peer.
	default:
		c.misses.add(addr, v, err)
	}
	return b, err
}

func (c *Client) fetchBundle(ctx context.Context, owner jid.JID, device uint32, v omemo.Version) (*omemo.Bundle, error) {
	if !v.Valid() {
		return nil, errInvalidVersion
	}
	node := v.BundleNode(device)
	var ids []string
	if v == omemo.V2 {
		ids = []string{strconv.FormatUint(uint64(device), 10)}
	}
	items, err := c.pep.Items(ctx, owner.Bare(), node, ids...)
	if isAbsent(err) {
		return nil, fmt.Errorf("%w: %s/%d (%s)", ErrNoBundle, owner.Bare(), device, v)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to fetch %s bundle of %s/%d: %w", v, owner.Bare(), device, err)
	}
	var pick *pubsub.Item
	for i := range items {
		it := &items[i]
		if !it.HasPayload() {
			continue
		}
		if v == omemo.V2 && it.ID != ids[0] {
			continue
		}
		// 0.3: "current", else the newest (last) item.
		if pick == nil || pick.ID != ItemCurrent {
			pick = it
		}
	}
	if pick == nil {
		return nil, fmt.Errorf("%w: %s/%d (%s)", ErrNoBundle, owner.Bare(), device, v)
	}
	var b omemo.Bundle
	if err := pick.Decode(&b); err != nil {
		return nil, fmt.Errorf("%w: %s bundle of %s/%d: %w", ErrMalformed, v, owner.Bare(), device, err)
	}
	if b.Version != v {
		return nil, fmt.Errorf("%w: %s bundle in the %s node", ErrMalformed, b.Version, v)
	}
	return &b, nil
}

// DeviceListUpdate is a device list received in a PEP notification.
type DeviceListUpdate struct {
	// JID is the bare JID whose list it is (our own when the notification
	// had no from).
	JID     jid.JID
	Version omemo.Version
	Devices []omemo.Device
}

// ErrNotDeviceList is returned by ParseDeviceListEvent for a message that
// is not a device-list notification (another PEP node, or no event).
var ErrNotDeviceList = errors.New("omemoxmpp: not a device list notification")

// ParseDeviceListEvent reads a message stanza (headline or normal, as PEP
// sends them) from r and returns the device list it announces. own is our
// account: a notification without from, or from our bare JID, is about our
// own list. A notification from a full JID (not a PEP service) is refused.
func ParseDeviceListEvent(r xml.TokenReader, own jid.JID) (*DeviceListUpdate, error) {
	ev, err := pubsub.ParseEvent(xmltok.CloseOpen(r))
	if errors.Is(err, pubsub.ErrNoEvent) {
		return nil, ErrNotDeviceList
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return DeviceListFromEvent(ev, own)
}

// DeviceListFromEvent is ParseDeviceListEvent for a notification already
// read (the client reads each pubsub notification once and routes it by
// node): ErrNotDeviceList for another node.
func DeviceListFromEvent(ev pubsub.Event, own jid.JID) (*DeviceListUpdate, error) {
	var v omemo.Version
	switch ev.Node {
	case omemo.V03.DeviceListNode():
		v = omemo.V03
	case omemo.V2.DeviceListNode():
		v = omemo.V2
	default:
		return nil, ErrNotDeviceList
	}
	from := ev.From
	if from.Equal(jid.JID{}) {
		from = own.Bare()
	}
	if from.Resourcepart() != "" || from.Localpart() == "" {
		return nil, fmt.Errorf("%w: device list notification from %s", ErrMalformed, from)
	}
	upd := &DeviceListUpdate{JID: from, Version: v}
	if ev.Purged || ev.Deleted || (len(ev.Items) == 0 && len(ev.Retracted) > 0) {
		upd.Devices = []omemo.Device{}
		return upd, nil
	}
	if len(ev.Items) == 0 {
		return nil, fmt.Errorf("%w: device list notification without items", ErrMalformed)
	}
	devices, err := parseDeviceListItems(v, ev.Items)
	if err != nil {
		return nil, err
	}
	upd.Devices = devices
	return upd, nil
}

// HandleDeviceListUpdate stores a received device list. When it is our own
// and our device is missing (another client overwrote the list), our device
// is added back and the list republished; republished reports that.
func (c *Client) HandleDeviceListUpdate(ctx context.Context, upd *DeviceListUpdate) (republished bool, err error) {
	if !c.speaks(upd.Version) {
		return false, nil
	}
	if upd.JID.Bare().Equal(c.own) {
		return c.ensureOwnDeviceList(ctx, upd.Version, upd.Devices)
	}
	if err := c.store.PutDeviceList(ctx, upd.Version, upd.JID.Bare().String(), upd.Devices); err != nil {
		return false, fmt.Errorf("failed to store %s device list of %s: %w", upd.Version, upd.JID, err)
	}
	// A republished list may come with bundles that failed before.
	for _, d := range upd.Devices {
		c.misses.forget(omemo.Address{JID: upd.JID.Bare().String(), Device: d.ID}, upd.Version)
	}
	return false, nil
}

// HandleDeviceListEvent is ParseDeviceListEvent followed by
// HandleDeviceListUpdate. It returns ErrNotDeviceList for other messages.
func (c *Client) HandleDeviceListEvent(ctx context.Context, r xml.TokenReader) (*DeviceListUpdate, error) {
	upd, err := ParseDeviceListEvent(r, c.own)
	if err != nil {
		return nil, err
	}
	if _, err := c.HandleDeviceListUpdate(ctx, upd); err != nil {
		return upd, err
	}
	return upd, nil
}

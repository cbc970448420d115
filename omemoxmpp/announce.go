package omemoxmpp

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/rs/zerolog"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
)

// BundleMaxItems is pubsub#max_items of the OMEMO 2 bundles node, which holds
// one item per device of the account, for servers that refuse the "max"
// keyword XEP-0384 asks for (Prosody's default pep_max_items is 256).
// Where "max" is accepted it is used: the account's other OMEMO clients
// publish with max_items=max and fail if the node says anything else.
const BundleMaxItems = 256

// ItemCurrent is the item id of device lists and of OMEMO 0.3 bundles.
const ItemCurrent = "current"

// Announce publishes our bundle, then makes sure our device id is in our
// device list (other devices are kept), for every version of the client,
// each version on its own: a server that refuses one version's bundle
// still gets the other version announced. A version's device list never
// gets our device before its bundle is published (contacts would find a
// device they cannot start a session with). Call it after each connect
// (and after Manager.Setup rotated keys); it returns the failures of the
// versions that could not be announced (errors.Join), and AnnounceStatus
// tells them apart.
func (c *Client) Announce(ctx context.Context) error {
	// All bundles first, then the lists of the versions whose bundle is
	// up: a contact never finds our device without a bundle behind it.
	errs := make([]error, len(c.versions))
	for i, v := range c.versions {
		errs[i] = c.publishBundle(ctx, v)
	}
	for i, v := range c.versions {
		if errs[i] == nil {
			_, errs[i] = c.ensureOwnDeviceList(ctx, v, nil)
		}
		c.ann.set(v, errs[i])
		if errs[i] != nil {
			errs[i] = fmt.Errorf("OMEMO %s: %w", v, errs[i])
		}
	}
	return errors.Join(errs...)
}

// Republish publishes our current bundle for each version in vs (all of the
// client's versions when vs is empty), each on its own. Call it when a
// one-time prekey was consumed (Message.PreKeyConsumed): the prekeys are
// shared by both versions, so republish both.
func (c *Client) Republish(ctx context.Context, vs ...omemo.Version) error {
	if len(vs) == 0 {
		vs = c.versions
	}
	var errs []error
	for _, v := range vs {
		if err := c.publishBundle(ctx, v); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// bundleLocation returns the node, item id and publish-options of our
// bundle for v.
func bundleLocation(v omemo.Version, device uint32) (node, id string, opts []pubsub.Field) {
	node = v.BundleNode(device)
	opts = []pubsub.Field{pubsub.AccessModel(pubsub.AccessOpen)}
	if v == omemo.V03 {
		return node, ItemCurrent, opts
	}
	return node, strconv.FormatUint(uint64(device), 10), append(opts, pubsub.MaxItemsMax())
}

func (c *Client) publishBundle(ctx context.Context, v omemo.Version) error {
	c.publishing.Lock()
	defer c.publishing.Unlock()
	b, err := c.m.Bundle(ctx, v)
	if err != nil {
		return fmt.Errorf("failed to build %s bundle: %w", v, err)
	}
	node, id, opts := bundleLocation(v, c.m.DeviceID())
	publish := func(opts []pubsub.Field) error {
		payload, err := marshalReader(b)
		if err != nil {
			return fmt.Errorf("failed to marshal %s bundle: %w", v, err)
		}
		return c.pep.Publish(ctx, node, id, payload, opts...)
	}
	err = publish(opts)
	if err != nil && v == omemo.V2 {
		err = c.publishBundleFallbacks(ctx, node, publish, err)
	}
	if err != nil {
		return fmt.Errorf("failed to publish %s bundle: %w", v, err)
	}
	c.ann.setBundled(v)
	zerolog.Ctx(ctx).Debug().Str("omemo_version", v.String()).Uint32("device_id", c.m.DeviceID()).
		Int("prekeys", len(b.PreKeys)).Msg("Published OMEMO bundle")
	return nil
}

// ensureOwnDeviceList adds our device to our device list for v if it is
// missing (or its label differs) and publishes the list, and stores the
// result. When known is nil the list is fetched first; otherwise known is the
// list just received (a PEP notification). It reports whether it published.
func (c *Client) ensureOwnDeviceList(ctx context.Context, v omemo.Version, known []omemo.Device) (bool, error) {
	if !c.ann.bundled(v) {
		// No bundle of ours is published for v on this connection: keep
		// the list as it is rather than list a device nobody can reach.
		if known == nil {
			return false, nil
		}
		if err := c.store.PutDeviceList(ctx, v, c.own.String(), known); err != nil {
			return false, fmt.Errorf("failed to store own %s device list: %w", v, err)
		}
		return false, nil
	}
	devices := known
	if devices == nil {
		var err error
		devices, err = c.fetchDeviceList(ctx, c.own.String(), v)
		if err != nil {
			return false, err
		}
	}
	merged, changed := withDevice(devices, omemo.Device{ID: c.m.DeviceID(), Label: c.label}, v)
	if changed {
		payload, err := DeviceListXML(&omemo.DeviceList{Version: v, Devices: merged})
		if err != nil {
			return false, err
		}
		if err := c.pep.Publish(ctx, v.DeviceListNode(), ItemCurrent, payload, pubsub.AccessModel(pubsub.AccessOpen)); err != nil {
			return false, fmt.Errorf("failed to publish %s device list: %w", v, err)
		}
		zerolog.Ctx(ctx).Debug().Str("omemo_version", v.String()).Int("devices", len(merged)).
			Msg("Published OMEMO device list with our device")
	}
	if err := c.store.PutDeviceList(ctx, v, c.own.String(), merged); err != nil {
		return changed, fmt.Errorf("failed to store own %s device list: %w", v, err)
	}
	return changed, nil
}

// withDevice returns list with d in it (replacing an entry with d's id whose
// label differs, for V2) and whether list had to change. Order is kept.
func withDevice(list []omemo.Device, d omemo.Device, v omemo.Version) ([]omemo.Device, bool) {
	out := make([]omemo.Device, 0, len(list)+1)
	found, changed := false, false
	for _, x := range list {
		if x.ID == d.ID {
			if found {
				changed = true // drop duplicates of our id
				continue
			}
			found = true
			if v == omemo.V2 && x.Label != d.Label {
				x.Label = d.Label
				changed = true
			}
		}
		out = append(out, x)
	}
	if !found {
		if v != omemo.V2 {
			d.Label = ""
		}
		out = append(out, d)
		changed = true
	}
	return out, changed
}

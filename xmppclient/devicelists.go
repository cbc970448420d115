package xmppclient

import (
	"context"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
)

// KnownDevices is the union of the stored device lists of contact over
// both OMEMO versions; nil when no list was ever stored.
func KnownDevices(ctx context.Context, store omemo.Store, contact jid.JID) (map[uint32]bool, error) {
	var out map[uint32]bool
	for _, v := range []omemo.Version{omemo.V2, omemo.V03} {
		list, err := store.DeviceList(ctx, v, contact.Bare().String())
		if err != nil {
			return nil, err
		}
		if list == nil {
			continue
		}
		if out == nil {
			out = map[uint32]bool{}
		}
		for _, d := range list {
			out[d.ID] = true
		}
	}
	return out, nil
}

// DeviceListChange is what a contact's device list notification changed:
// the contact's known devices before and after (nil before when no list of
// the contact was stored yet).
type DeviceListChange struct {
	Before, After map[uint32]bool
}

// applyDeviceList stores a contact's device list notification (sessions
// with devices no longer listed are given up by the engine) and says what
// it changed. Our own account's lists go to the OMEMO work queue instead
// (putting our device back publishes).
func applyDeviceList(ctx context.Context, oc *omemoxmpp.Client, store omemo.Store, upd *omemoxmpp.DeviceListUpdate) (DeviceListChange, error) {
	var ch DeviceListChange
	ch.Before, _ = KnownDevices(ctx, store, upd.JID)
	if _, err := oc.HandleDeviceListUpdate(ctx, upd); err != nil {
		return ch, err
	}
	if ch.Before != nil {
		ch.After, _ = KnownDevices(ctx, store, upd.JID)
	}
	return ch, nil
}

// ApplyDeviceList stores a contact's device list notification and says
// what it changed (applyDeviceList); ErrOMEMOUnavailable without a session
// client.
func (o *OMEMO) ApplyDeviceList(ctx context.Context, store omemo.Store, upd *omemoxmpp.DeviceListUpdate) (DeviceListChange, error) {
	oc := o.Client()
	if oc == nil {
		return DeviceListChange{}, ErrOMEMOUnavailable
	}
	return applyDeviceList(ctx, oc, store, upd)
}

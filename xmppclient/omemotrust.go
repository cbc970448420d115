package xmppclient

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
)

// The protocol part of the trust commands: a JID's devices fetched with
// their identity keys, and the trust of one device set after its
// fingerprint was checked. The connector words the replies.

// DeviceInfo is one device of a JID with what is known of its identity.
type DeviceInfo struct {
	ID          uint32
	Versions    []omemo.Version
	Fingerprint string // "" when the identity key is unknown
	IdentityKey []byte // Curve25519 form
	Level       omemo.TrustLevel
	Trusted     bool
	Err         error // why the identity is unknown
}

// Errors of SetDeviceTrust.
var (
	ErrUnknownDevice       = errors.New("no such OMEMO device")
	ErrFingerprintMismatch = errors.New("the fingerprint does not match the device's identity key")
)

// listDevices returns the devices of owner (fetched fresh) with their
// identity keys: from the trust records, else from their bundles. Our own
// device (when owner is account) is left out.
func listDevices(ctx context.Context, oc *omemoxmpp.Client, owner, account jid.JID) ([]DeviceInfo, error) {
	m := oc.Manager()
	set, err := oc.FetchDevices(ctx, owner)
	if err != nil && len(set) == 0 {
		return nil, err
	}
	recs, err := m.Devices(ctx, owner.Bare().String())
	if err != nil {
		return nil, err
	}
	ids := make([]uint32, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]DeviceInfo, 0, len(ids))
	for _, id := range ids {
		if owner.Bare().Equal(account.Bare()) && id == m.DeviceID() {
			continue
		}
		d := DeviceInfo{ID: id, Versions: set[id]}
		d.IdentityKey = identityInUse(ctx, m, omemo.Address{JID: owner.Bare().String(), Device: id}, recs)
		if d.IdentityKey == nil {
			v := set.Preferred(id)
			b, err := oc.FetchBundle(ctx, owner, id, v)
			if err != nil {
				d.Err = err
				out = append(out, d)
				continue
			}
			if d.IdentityKey, err = omemo.CurveIdentityKey(v, b.IdentityKey); err != nil {
				d.Err = err
				out = append(out, d)
				continue
			}
		}
		d.Fingerprint, _ = omemo.Fingerprint(omemo.V03, d.IdentityKey)
		d.Level, d.Trusted, err = m.Trust(ctx, omemo.V03, omemo.Address{JID: owner.Bare().String(), Device: id}, d.IdentityKey)
		if err != nil {
			d.Err = err
		}
		out = append(out, d)
	}
	return out, nil
}

// identityInUse is the identity key a trust command about addr must name:
// the key of the current session with the device (OMEMO 2 first), else
// the only key on record; nil when that is ambiguous or unknown (the
// published bundle then decides). Never a record picked by key order: a
// device id seen with two keys would get the other key trusted.
func identityInUse(ctx context.Context, m *omemo.Manager, addr omemo.Address, recs []omemo.TrustRecord) []byte {
	for _, v := range []omemo.Version{omemo.V2, omemo.V03} {
		if k, err := m.SessionIdentityKey(ctx, v, addr); err == nil && k != nil {
			return k
		}
	}
	var key []byte
	for _, r := range recs {
		if r.Device != addr.Device {
			continue
		}
		if key != nil {
			return nil
		}
		key = r.IdentityKey
	}
	return key
}

// setDeviceTrust sets the trust of one device of owner. A fingerprint,
// when given, must match the device's identity key (spaces, colons and
// case do not matter).
func setDeviceTrust(ctx context.Context, oc *omemoxmpp.Client, owner, account jid.JID, device uint32, fingerprint string, level omemo.TrustLevel) (*DeviceInfo, error) {
	devices, err := listDevices(ctx, oc, owner, account)
	if err != nil {
		return nil, err
	}
	for i := range devices {
		d := &devices[i]
		if d.ID != device {
			continue
		}
		if d.IdentityKey == nil {
			return nil, fmt.Errorf("identity of device %d unknown: %w", device, d.Err)
		}
		if fingerprint != "" && normalizeFingerprint(fingerprint) != normalizeFingerprint(d.Fingerprint) {
			return nil, ErrFingerprintMismatch
		}
		addr := omemo.Address{JID: owner.Bare().String(), Device: device}
		if err := oc.Manager().SetTrust(ctx, omemo.V03, addr, d.IdentityKey, level); err != nil {
			return nil, err
		}
		d.Level = level
		return d, nil
	}
	return nil, fmt.Errorf("%w: %d of %s", ErrUnknownDevice, device, owner.Bare())
}

func normalizeFingerprint(s string) string {
	return strings.ToLower(strings.Join(strings.Fields(strings.ReplaceAll(s, ":", " ")), ""))
}

// ListDevices returns the devices of owner (fetched fresh) with their
// identity keys and trust (listDevices).
func (o *OMEMO) ListDevices(ctx context.Context, owner jid.JID) ([]DeviceInfo, error) {
	oc, account := o.session()
	if oc == nil {
		return nil, ErrOMEMOUnavailable
	}
	return listDevices(ctx, oc, owner, account)
}

// SetDeviceTrust sets the trust of one device of owner, its fingerprint
// checked when given (setDeviceTrust).
func (o *OMEMO) SetDeviceTrust(ctx context.Context, owner jid.JID, device uint32, fingerprint string, level omemo.TrustLevel) (*DeviceInfo, error) {
	oc, account := o.session()
	if oc == nil {
		return nil, ErrOMEMOUnavailable
	}
	return setDeviceTrust(ctx, oc, owner, account, device, fingerprint, level)
}

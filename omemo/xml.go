package omemo

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
)

// Limits on parsed elements, against hostile input.
const (
	maxBundlePreKeys = 1000
	maxDevices       = 1000
	maxKeys          = 10000
	maxLabel         = 100
)

// Bundle is a device's published key bundle. Keys are raw 32 bytes: for V03
// the identity key is Curve25519, for V2 Ed25519; prekeys are Curve25519.
type Bundle struct {
	Version               Version
	IdentityKey           []byte
	SignedPreKeyID        uint32
	SignedPreKey          []byte
	SignedPreKeySignature []byte
	PreKeys               []BundlePreKey
}

// BundlePreKey is a public one-time prekey in a bundle.
type BundlePreKey struct {
	ID  uint32
	Key []byte
}

// DeviceList is the content of a device list PEP item.
type DeviceList struct {
	Version Version
	Devices []Device
}

// Encrypted is an <encrypted/> element. IV is used by V03 only. Payload is
// nil for empty messages (key transport, heartbeats).
type Encrypted struct {
	Version      Version
	SenderDevice uint32
	Keys         []EncryptedKey
	IV           []byte
	Payload      []byte
}

// EncryptedKey is one <key/>: the ratchet message for one device. JID is
// the recipient's bare JID (<keys jid/>, V2 only; empty for V03).
// KeyExchange is prekey='true' (V03) or kex='true' (V2).
type EncryptedKey struct {
	JID         string
	Device      uint32
	KeyExchange bool
	Data        []byte
}

// KeyFor returns the key for device (and, for V2, jid), or nil.
func (e *Encrypted) KeyFor(jid string, device uint32) *EncryptedKey {
	for i := range e.Keys {
		k := &e.Keys[i]
		if k.Device == device && (e.Version == V03 || k.JID == jid) {
			return k
		}
	}
	return nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// unb64 decodes base64 tolerating whitespace (line-wrapped output of some
// clients) and missing padding.
func unb64(s string) ([]byte, error) {
	if strings.ContainsAny(s, " \t\r\n") {
		s = strings.Join(strings.Fields(s), "")
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
		if err != nil {
			return nil, fmt.Errorf("%w: bad base64", ErrMalformed)
		}
	}
	return b, nil
}

func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: bad id %q", ErrMalformed, s)
	}
	return uint32(n), nil
}

func fmtID(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

func parseBool(s string) (bool, error) {
	switch strings.TrimSpace(s) {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	}
	return false, fmt.Errorf("%w: bad boolean %q", ErrMalformed, s)
}

// typed33 adds the 0x05 Curve25519 type byte of the V03 wire form.
func typed33(k []byte) []byte {
	out := make([]byte, 0, 33)
	return append(append(out, 0x05), k...)
}

// untype strips the 0x05 type byte and checks the key length.
func untype(b []byte) ([]byte, error) {
	if len(b) == 33 && b[0] == 0x05 {
		return b[1:], nil
	}
	if len(b) == 32 {
		return b, nil
	}
	return nil, fmt.Errorf("%w: bad key length %d", ErrMalformed, len(b))
}

func key32(b []byte) ([]byte, error) {
	if len(b) != 32 {
		return nil, fmt.Errorf("%w: bad key length %d", ErrMalformed, len(b))
	}
	return b, nil
}

type xmlEnc struct {
	e   *xml.Encoder
	err error
}

func (w *xmlEnc) start(name string, attrs ...xml.Attr) {
	if w.err == nil {
		w.err = w.e.EncodeToken(xml.StartElement{Name: xml.Name{Local: name}, Attr: attrs})
	}
}

func (w *xmlEnc) startNS(ns, name string, attrs ...xml.Attr) {
	if w.err == nil {
		w.err = w.e.EncodeToken(xml.StartElement{Name: xml.Name{Space: ns, Local: name}, Attr: attrs})
	}
}

func (w *xmlEnc) end(ns, name string) {
	if w.err == nil {
		w.err = w.e.EncodeToken(xml.EndElement{Name: xml.Name{Space: ns, Local: name}})
	}
}

func (w *xmlEnc) text(s string) {
	if w.err == nil && s != "" {
		w.err = w.e.EncodeToken(xml.CharData(s))
	}
}

func (w *xmlEnc) elem(name, text string, attrs ...xml.Attr) {
	w.start(name, attrs...)
	w.text(text)
	w.end("", name)
}

func attr(name, value string) xml.Attr { return xml.Attr{Name: xml.Name{Local: name}, Value: value} }

func marshalBytes(m xml.Marshaler) ([]byte, error) {
	var buf bytes.Buffer
	e := xml.NewEncoder(&buf)
	if err := m.MarshalXML(e, xml.StartElement{}); err != nil {
		return nil, err
	}
	if err := e.Flush(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func unmarshalBytes(data []byte, u xml.Unmarshaler) error {
	d := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := d.Token()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			return u.UnmarshalXML(d, se)
		}
	}
}

func checkStart(start xml.StartElement, local string) (Version, error) {
	v, ok := VersionOf(start.Name.Space)
	if !ok || start.Name.Local != local {
		return 0, fmt.Errorf("%w: unexpected element {%s}%s", ErrMalformed, start.Name.Space, start.Name.Local)
	}
	return v, nil
}

// MarshalXML writes the bundle in the form of b.Version; start is ignored.
func (b *Bundle) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	w := &xmlEnc{e: e}
	ns := b.Version.Namespace()
	if ns == "" {
		return fmt.Errorf("%w: invalid version", ErrMalformed)
	}
	if len(b.IdentityKey) != 32 || len(b.SignedPreKey) != 32 || len(b.SignedPreKeySignature) != 64 {
		return fmt.Errorf("%w: bundle key sizes", ErrMalformed)
	}
	for _, pk := range b.PreKeys {
		if len(pk.Key) != 32 {
			return fmt.Errorf("%w: prekey %d size", ErrMalformed, pk.ID)
		}
	}
	w.startNS(ns, "bundle")
	if b.Version == V03 {
		w.elem("signedPreKeyPublic", b64(typed33(b.SignedPreKey)), attr("signedPreKeyId", fmtID(b.SignedPreKeyID)))
		w.elem("signedPreKeySignature", b64(b.SignedPreKeySignature))
		w.elem("identityKey", b64(typed33(b.IdentityKey)))
		w.start("prekeys")
		for _, pk := range b.PreKeys {
			w.elem("preKeyPublic", b64(typed33(pk.Key)), attr("preKeyId", fmtID(pk.ID)))
		}
		w.end("", "prekeys")
	} else {
		w.elem("spk", b64(b.SignedPreKey), attr("id", fmtID(b.SignedPreKeyID)))
		w.elem("spks", b64(b.SignedPreKeySignature))
		w.elem("ik", b64(b.IdentityKey))
		w.start("prekeys")
		for _, pk := range b.PreKeys {
			w.elem("pk", b64(pk.Key), attr("id", fmtID(pk.ID)))
		}
		w.end("", "prekeys")
	}
	w.end(ns, "bundle")
	return w.err
}

type xmlKeyText struct {
	ID1  string `xml:"signedPreKeyId,attr"`
	ID2  string `xml:"preKeyId,attr"`
	ID   string `xml:"id,attr"`
	Text string `xml:",chardata"`
}

type xmlBundle struct {
	SPK03   *xmlKeyText  `xml:"signedPreKeyPublic"`
	Sig03   *string      `xml:"signedPreKeySignature"`
	IK03    *string      `xml:"identityKey"`
	SPK2    *xmlKeyText  `xml:"spk"`
	Sig2    *string      `xml:"spks"`
	IK2     *string      `xml:"ik"`
	PreKeys []xmlKeyText `xml:"prekeys>preKeyPublic"`
	PKs     []xmlKeyText `xml:"prekeys>pk"`
}

// UnmarshalXML parses a <bundle/> of either namespace.
func (b *Bundle) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	v, err := checkStart(start, "bundle")
	if err != nil {
		return err
	}
	var raw xmlBundle
	if err := d.DecodeElement(&raw, &start); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	out := Bundle{Version: v}
	var spk *xmlKeyText
	var sig, ik *string
	var pks []xmlKeyText
	decodeKey := untype
	if v == V03 {
		spk, sig, ik, pks = raw.SPK03, raw.Sig03, raw.IK03, raw.PreKeys
		if spk != nil {
			spk.ID = spk.ID1
		}
		for i := range pks {
			pks[i].ID = pks[i].ID2
		}
	} else {
		spk, sig, ik, pks = raw.SPK2, raw.Sig2, raw.IK2, raw.PKs
		decodeKey = key32
	}
	if spk == nil || sig == nil || ik == nil {
		return fmt.Errorf("%w: incomplete bundle", ErrMalformed)
	}
	if len(pks) == 0 || len(pks) > maxBundlePreKeys {
		return fmt.Errorf("%w: bundle with %d prekeys", ErrMalformed, len(pks))
	}
	if out.SignedPreKeyID, err = parseID(spk.ID); err != nil {
		return err
	}
	raw33, err := unb64(spk.Text)
	if err != nil {
		return err
	}
	if out.SignedPreKey, err = untype(raw33); err != nil {
		return err
	}
	if out.SignedPreKeySignature, err = unb64(*sig); err != nil {
		return err
	}
	if len(out.SignedPreKeySignature) != 64 {
		return fmt.Errorf("%w: signature length %d", ErrMalformed, len(out.SignedPreKeySignature))
	}
	ikb, err := unb64(*ik)
	if err != nil {
		return err
	}
	if out.IdentityKey, err = decodeKey(ikb); err != nil {
		return err
	}
	out.PreKeys = make([]BundlePreKey, 0, len(pks))
	for _, pk := range pks {
		id, err := parseID(pk.ID)
		if err != nil {
			return err
		}
		kb, err := unb64(pk.Text)
		if err != nil {
			return err
		}
		k, err := untype(kb)
		if err != nil {
			return err
		}
		out.PreKeys = append(out.PreKeys, BundlePreKey{ID: id, Key: k})
	}
	*b = out
	return nil
}

// ParseBundle parses a <bundle/> element of either namespace.
func ParseBundle(data []byte) (*Bundle, error) {
	var b Bundle
	if err := unmarshalBytes(data, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// Marshal returns the XML of b.
func (b *Bundle) Marshal() ([]byte, error) { return marshalBytes(b) }

// MarshalXML writes <list/> (V03) or <devices/> (V2).
func (l *DeviceList) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	w := &xmlEnc{e: e}
	ns := l.Version.Namespace()
	if ns == "" {
		return fmt.Errorf("%w: invalid version", ErrMalformed)
	}
	root := "devices"
	if l.Version == V03 {
		root = "list"
	}
	w.startNS(ns, root)
	for _, d := range l.Devices {
		if l.Version == V2 && d.Label != "" {
			w.elem("device", "", attr("id", fmtID(d.ID)), attr("label", d.Label))
		} else {
			w.elem("device", "", attr("id", fmtID(d.ID)))
		}
	}
	w.end(ns, root)
	return w.err
}

type xmlDevice struct {
	ID    string `xml:"id,attr"`
	Label string `xml:"label,attr"`
}

type xmlDeviceList struct {
	Devices []xmlDevice `xml:"device"`
}

// UnmarshalXML parses <list/> (V03) or <devices/> (V2).
func (l *DeviceList) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	v, ok := VersionOf(start.Name.Space)
	if !ok || (v == V03 && start.Name.Local != "list") || (v == V2 && start.Name.Local != "devices") {
		return fmt.Errorf("%w: unexpected element {%s}%s", ErrMalformed, start.Name.Space, start.Name.Local)
	}
	var raw xmlDeviceList
	if err := d.DecodeElement(&raw, &start); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(raw.Devices) > maxDevices {
		return fmt.Errorf("%w: %d devices", ErrMalformed, len(raw.Devices))
	}
	out := DeviceList{Version: v, Devices: make([]Device, 0, len(raw.Devices))}
	for _, rd := range raw.Devices {
		id, err := parseID(rd.ID)
		if err != nil {
			return err
		}
		if id == 0 {
			return fmt.Errorf("%w: device id 0", ErrMalformed)
		}
		label := ""
		if v == V2 {
			label = rd.Label
			if len(label) > maxLabel {
				label = label[:maxLabel]
			}
		}
		out.Devices = append(out.Devices, Device{ID: id, Label: label})
	}
	*l = out
	return nil
}

// ParseDeviceList parses a device list element of either namespace.
func ParseDeviceList(data []byte) (*DeviceList, error) {
	var l DeviceList
	if err := unmarshalBytes(data, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// Marshal returns the XML of l.
func (l *DeviceList) Marshal() ([]byte, error) { return marshalBytes(l) }

// Has reports whether the list names device id.
func (l *DeviceList) Has(id uint32) bool {
	for _, d := range l.Devices {
		if d.ID == id {
			return true
		}
	}
	return false
}

// With returns a copy of l that names d, keeping every other device (of the
// account's other clients) as it was; an existing entry for d.ID gets d's
// label.
func (l *DeviceList) With(d Device) *DeviceList {
	out := &DeviceList{Version: l.Version, Devices: make([]Device, 0, len(l.Devices)+1)}
	found := false
	for _, x := range l.Devices {
		if x.ID == d.ID {
			x, found = d, true
		}
		out.Devices = append(out.Devices, x)
	}
	if !found {
		out.Devices = append(out.Devices, d)
	}
	return out
}

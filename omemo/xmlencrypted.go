package omemo

import (
	"encoding/xml"
	"fmt"
)

// The <encrypted/> element of both wire profiles (xml.go has the shared
// helpers, bundles and device lists).

// MarshalXML writes the <encrypted/> element in the form of e.Version.
func (m *Encrypted) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	w := &xmlEnc{e: e}
	ns := m.Version.Namespace()
	if ns == "" {
		return fmt.Errorf("%w: invalid version", ErrMalformed)
	}
	w.startNS(ns, "encrypted")
	w.start("header", attr("sid", fmtID(m.SenderDevice)))
	if m.Version == V03 {
		for _, k := range m.Keys {
			if k.KeyExchange {
				w.elem("key", b64(k.Data), attr("rid", fmtID(k.Device)), attr("prekey", "true"))
			} else {
				w.elem("key", b64(k.Data), attr("rid", fmtID(k.Device)))
			}
		}
		w.elem("iv", b64(m.IV))
	} else {
		for _, k := range m.Keys {
			if k.JID == "" {
				return fmt.Errorf("%w: OMEMO 2 key without jid", ErrMalformed)
			}
		}
		// Group keys by JID, in order of first appearance.
		done := make([]bool, len(m.Keys))
		for i := range m.Keys {
			if done[i] {
				continue
			}
			jid := m.Keys[i].JID
			w.start("keys", attr("jid", jid))
			for j := i; j < len(m.Keys); j++ {
				k := m.Keys[j]
				if done[j] || k.JID != jid {
					continue
				}
				done[j] = true
				if k.KeyExchange {
					w.elem("key", b64(k.Data), attr("rid", fmtID(k.Device)), attr("kex", "true"))
				} else {
					w.elem("key", b64(k.Data), attr("rid", fmtID(k.Device)))
				}
			}
			w.end("", "keys")
		}
	}
	w.end("", "header")
	if m.Payload != nil {
		w.elem("payload", b64(m.Payload))
	}
	w.end(ns, "encrypted")
	return w.err
}

type xmlKey struct {
	RID    string `xml:"rid,attr"`
	PreKey string `xml:"prekey,attr"`
	Kex    string `xml:"kex,attr"`
	Text   string `xml:",chardata"`
}

type xmlKeys struct {
	JID  string   `xml:"jid,attr"`
	Keys []xmlKey `xml:"key"`
}

type xmlEncrypted struct {
	Header *struct {
		SID    string    `xml:"sid,attr"`
		Keys03 []xmlKey  `xml:"key"`
		Keys2  []xmlKeys `xml:"keys"`
		IV     *string   `xml:"iv"`
	} `xml:"header"`
	Payload *string `xml:"payload"`
}

// UnmarshalXML parses an <encrypted/> element of either namespace.
func (m *Encrypted) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	v, err := checkStart(start, "encrypted")
	if err != nil {
		return err
	}
	var raw xmlEncrypted
	if err := d.DecodeElement(&raw, &start); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if raw.Header == nil {
		return fmt.Errorf("%w: no header", ErrMalformed)
	}
	out := Encrypted{Version: v}
	if out.SenderDevice, err = parseID(raw.Header.SID); err != nil {
		return err
	}
	addKey := func(jid string, k xmlKey, kexAttr string) error {
		if len(out.Keys) >= maxKeys {
			return fmt.Errorf("%w: too many keys", ErrMalformed)
		}
		rid, err := parseID(k.RID)
		if err != nil {
			return err
		}
		kex, err := parseBool(kexAttr)
		if err != nil {
			return err
		}
		data, err := unb64(k.Text)
		if err != nil {
			return err
		}
		out.Keys = append(out.Keys, EncryptedKey{JID: jid, Device: rid, KeyExchange: kex, Data: data})
		return nil
	}
	if v == V03 {
		for _, k := range raw.Header.Keys03 {
			if err := addKey("", k, k.PreKey); err != nil {
				return err
			}
		}
		if raw.Header.IV == nil {
			return fmt.Errorf("%w: no iv", ErrMalformed)
		}
		if out.IV, err = unb64(*raw.Header.IV); err != nil {
			return err
		}
		if len(out.IV) != 12 && len(out.IV) != 16 {
			return fmt.Errorf("%w: iv length %d", ErrMalformed, len(out.IV))
		}
	} else {
		for _, ks := range raw.Header.Keys2 {
			if ks.JID == "" {
				return fmt.Errorf("%w: keys without jid", ErrMalformed)
			}
			for _, k := range ks.Keys {
				if err := addKey(ks.JID, k, k.Kex); err != nil {
					return err
				}
			}
		}
	}
	if raw.Payload != nil {
		if out.Payload, err = unb64(*raw.Payload); err != nil {
			return err
		}
		if out.Payload == nil {
			out.Payload = []byte{}
		}
	}
	*m = out
	return nil
}

// ParseEncrypted parses an <encrypted/> element of either namespace.
func ParseEncrypted(data []byte) (*Encrypted, error) {
	var m Encrypted
	if err := unmarshalBytes(data, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Marshal returns the XML of m.
func (m *Encrypted) Marshal() ([]byte, error) { return marshalBytes(m) }

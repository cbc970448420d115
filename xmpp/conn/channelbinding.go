package conn

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"sync"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
)

// SASL channel binding, as the clients people trust do it.
//
// Conversations uses a -PLUS mechanism only with a channel binding type the
// server announced through XEP-0440 (sasl-channel-binding) and that fits the
// TLS version (tls-exporter on TLS 1.3, tls-unique on TLS 1.2); without the
// announcement it does not bind. We do the same with one addition: on
// TLS 1.2 without XEP-0440 we bind with tls-unique, the one type every
// server that offered -PLUS before XEP-0440 existed implements (Prosody
// 0.12, ejabberd). On TLS 1.3 without XEP-0440 we do not bind: tls-exporter
// is the only type defined there, and servers offer -PLUS without
// implementing it (ejabberd 23.01 answers "Invalid channel binding"), while
// each refused attempt counts as a failed login (ejabberd's mod_fail2ban
// bans an address after a few).
//
// A refusal of the binding is never taken for a wrong password: when a
// -PLUS attempt fails, Dial tries once more without channel binding (a new
// connection, SCRAM without -PLUS). Only when that fails too is the
// password wrong; when it succeeds, the host is remembered and later
// connections skip -PLUS there.
//
// Downgrade risk: channel binding protects against a man in the middle who
// holds a certificate the bridge accepts. Such an attacker can already
// strip -PLUS from the offered mechanisms (XMPP has no downgrade protection
// before XEP-0474, which Prosody 0.12 and ejabberd 23.01 lack), so the
// fallback adds no weakness beyond that; it is logged (Info.ChannelBindingRefused)
// so an admin can see it. The bridge never falls back to PLAIN because of
// it, and never to an unencrypted stream.

// nsSASLCB is XEP-0440's namespace.
const nsSASLCB = "urn:xmpp:sasl-cb:0"

// cbOffer is what the server announced through XEP-0440.
type cbOffer struct {
	announced bool
	types     []string
}

// cbFeature reads XEP-0440's stream feature into offer. It is never
// negotiated (its Necessary and Prohibited states exclude each other), only
// parsed, which mellium does for every feature it knows before it
// negotiates SASL.
func cbFeature(offer *cbOffer) xmpp.StreamFeature {
	return xmpp.StreamFeature{
		Name:       xml.Name{Space: nsSASLCB, Local: "sasl-channel-binding"},
		Necessary:  xmpp.Secure,
		Prohibited: xmpp.Secure,
		List: func(context.Context, xmlstream.TokenWriter, xml.StartElement) (bool, error) {
			return false, nil
		},
		Parse: func(_ context.Context, d *xml.Decoder, start *xml.StartElement) (bool, interface{}, error) {
			var f struct {
				Types []struct {
					Type string `xml:"type,attr"`
				} `xml:"urn:xmpp:sasl-cb:0 channel-binding"`
			}
			if err := d.DecodeElement(&f, start); err != nil {
				return false, nil, err
			}
			offer.announced = true
			offer.types = offer.types[:0]
			for _, t := range f.Types {
				offer.types = append(offer.types, strings.TrimSpace(t.Type))
			}
			return false, nil, nil
		},
		Negotiate: func(context.Context, *xmpp.Session, interface{}) (xmpp.SessionState, io.ReadWriter, error) {
			return 0, nil, errors.New("conn: sasl-channel-binding is not negotiable")
		},
	}
}

// channelBindingType is the type mellium binds with on a TLS version.
func channelBindingType(version uint16) string {
	if version >= tls.VersionTLS13 {
		return "tls-exporter"
	}
	return "tls-unique"
}

// useChannelBinding decides whether to offer -PLUS mechanisms to mellium.
func useChannelBinding(version uint16, offer cbOffer, refused bool) bool {
	switch {
	case refused || version == 0:
		return false
	case offer.announced:
		return slices.Contains(offer.types, channelBindingType(version))
	default:
		return version < tls.VersionTLS13
	}
}

// withoutPlus returns the offered mechanisms without the -PLUS variants.
func withoutPlus(offered []string) []string {
	out := make([]string, 0, len(offered))
	for _, m := range offered {
		if !strings.HasSuffix(strings.ToUpper(m), "-PLUS") {
			out = append(out, m)
		}
	}
	return out
}

// cbRefusedHosts remembers the servers that refused channel binding in this
// process, so reconnects do not fail a login attempt each time.
var cbRefusedHosts sync.Map // string -> struct{}

func (c Config) cbKey() string {
	return strings.ToLower(c.JID.Domainpart() + "|" + c.Addr())
}

// channelBindingRefusal reports whether a failed -PLUS attempt may have
// been a refusal of the binding rather than of the password: any SASL
// failure of a -PLUS attempt qualifies (servers answer not-authorized to
// both), a transport or TLS failure does not.
func channelBindingRefusal(info *Info, err error) bool {
	if info.ChannelBinding == "" {
		return false
	}
	return errors.Is(err, ErrWrongPassword) || errors.Is(err, ErrAuthFailed)
}

// saslText extracts the text of an RFC 6120 SASL failure (by reflection,
// as saslCondition does: mellium's type is internal).
func saslText(err error) string {
	for err != nil {
		v := reflect.ValueOf(err)
		if v.Kind() == reflect.Pointer && !v.IsNil() {
			v = v.Elem()
		}
		if v.Kind() == reflect.Struct {
			if f := v.FieldByName("Text"); f.IsValid() && f.Kind() == reflect.String && v.FieldByName("Condition").IsValid() {
				return f.String()
			}
		}
		err = errors.Unwrap(err)
	}
	return ""
}

package bridge

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/portal"
)

func TestParseOMEMOCommand(t *testing.T) {
	chat := jid.MustParse("bob@example.org")
	none := jid.JID{}
	for _, tc := range []struct {
		args []string
		chat jid.JID
		want omemoCommand
		err  error
	}{
		{nil, none, omemoCommand{Action: "help"}, nil},
		{[]string{"fingerprint"}, none, omemoCommand{Action: "fingerprint"}, nil},
		{[]string{"fingerprint", "x"}, none, omemoCommand{}, errUsage},
		{[]string{"devices"}, chat, omemoCommand{Action: "devices", JID: chat}, nil},
		{[]string{"devices"}, none, omemoCommand{}, errNeedsJID},
		{[]string{"devices", "xmpp:Carol@Example.org/phone"}, none, omemoCommand{Action: "devices", JID: jid.MustParse("carol@example.org")}, nil},
		{[]string{"DEVICES", "carol@example.org"}, chat, omemoCommand{Action: "devices", JID: jid.MustParse("carol@example.org")}, nil},
		{[]string{"devices", "a@b", "c@d"}, none, omemoCommand{}, errUsage},
		{[]string{"verify", "1234"}, chat, omemoCommand{Action: "verify", JID: chat, Device: 1234}, nil},
		{[]string{"verify", "1234", "0a1b2c3d", "4e5f6a7b"}, chat, omemoCommand{Action: "verify", JID: chat, Device: 1234, Fingerprint: "0a1b2c3d 4e5f6a7b"}, nil},
		{[]string{"trust", "carol@example.org", "42"}, none, omemoCommand{Action: "trust", JID: jid.MustParse("carol@example.org"), Device: 42}, nil},
		{[]string{"distrust", "carol@example.org", "42"}, chat, omemoCommand{Action: "distrust", JID: jid.MustParse("carol@example.org"), Device: 42}, nil},
		{[]string{"trust", "42"}, none, omemoCommand{}, errNeedsJID},
		{[]string{"trust"}, chat, omemoCommand{}, errUsage},
		{[]string{"trust", "abc"}, chat, omemoCommand{}, errBadDeviceID},
		{[]string{"trust", "0"}, chat, omemoCommand{}, errBadDeviceID},
		{[]string{"trust", "4294967296"}, chat, omemoCommand{}, errBadDeviceID},
		{[]string{"on"}, chat, omemoCommand{Action: "on", JID: chat}, nil},
		{[]string{"off"}, chat, omemoCommand{Action: "off", JID: chat}, nil},
		{[]string{"status"}, chat, omemoCommand{Action: "status", JID: chat}, nil},
		{[]string{"on"}, none, omemoCommand{}, errNeedsPortal},
		{[]string{"on", "now"}, chat, omemoCommand{}, errUsage},
		{[]string{"encrypt"}, chat, omemoCommand{}, errUsage},
	} {
		t.Run(strings.Join(tc.args, "_"), func(t *testing.T) {
			got, err := parseOMEMOCommand(tc.args, tc.chat)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Action != tc.want.Action || !got.JID.Equal(tc.want.JID) || got.Device != tc.want.Device || got.Fingerprint != tc.want.Fingerprint {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestTrustLevelOf(t *testing.T) {
	for action, want := range map[string]omemo.TrustLevel{"verify": omemo.TrustVerified, "trust": omemo.TrustTrusted, "distrust": omemo.TrustDistrusted} {
		if got := trustLevelOf(action); got != want {
			t.Errorf("%s: %v, want %v", action, got, want)
		}
	}
}

func TestEncryptedChatDecision(t *testing.T) {
	for _, tc := range []struct {
		name     string
		meta     portal.Metadata
		incoming bool  // OMEMO arrived
		command  *bool // omemo on/off
		want     portal.Metadata
		changed  bool
	}{
		{"new chat, contact uses OMEMO", portal.Metadata{}, true, nil, portal.Metadata{OMEMO: true}, true},
		{"already encrypted", portal.Metadata{OMEMO: true}, true, nil, portal.Metadata{OMEMO: true}, false},
		{"user turned it off", portal.Metadata{OMEMOOff: true}, true, nil, portal.Metadata{OMEMOOff: true}, false},
		{"omemo on", portal.Metadata{}, false, ptrBool(true), portal.Metadata{OMEMO: true}, true},
		{"omemo on after off", portal.Metadata{OMEMOOff: true}, false, ptrBool(true), portal.Metadata{OMEMO: true}, true},
		{"omemo off", portal.Metadata{OMEMO: true}, false, ptrBool(false), portal.Metadata{OMEMOOff: true}, true},
		{"omemo off twice", portal.Metadata{OMEMOOff: true}, false, ptrBool(false), portal.Metadata{OMEMOOff: true}, false},
		{"omemo off on a new chat", portal.Metadata{}, false, ptrBool(false), portal.Metadata{OMEMOOff: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.meta
			var changed bool
			if tc.incoming {
				changed = markEncrypted(&m)
			}
			if tc.command != nil {
				changed = setEncrypted(&m, *tc.command)
			}
			if m != tc.want || changed != tc.changed {
				t.Fatalf("got %+v (changed %v), want %+v (changed %v)", m, changed, tc.want, tc.changed)
			}
		})
	}
	if !strings.Contains(encryptionStateText(&portal.Metadata{OMEMO: true}), "never as plaintext") {
		t.Error("state text of an encrypted chat")
	}
}

func ptrBool(b bool) *bool { return &b }

func TestDecryptFailureNotice(t *testing.T) {
	for _, tc := range []struct {
		err    error
		fromMe bool
		device uint32
		want   []string
	}{
		{fmt.Errorf("x: %w", omemo.ErrNotForThisDevice), false, 1234, []string{"bob@example.org", "device 1234", "not encrypted for the bridge's device"}},
		{omemo.ErrBadMAC, false, 7, []string{"device 7", "failed authentication"}},
		{omemo.ErrNoSession, false, 7, []string{"no OMEMO session", "resend"}},
		{omemo.ErrUnknownPreKey, false, 7, []string{"no OMEMO session"}},
		{omemo.ErrTooManySkipped, false, 7, []string{"too many messages"}},
		{omemo.ErrEnvelope, false, 7, []string{"envelope is invalid"}},
		{fmt.Errorf("%w ({urn:xmpp:reactions:0}reactions)", omemoxmpp.ErrUnreadableContent), false, 7, []string{"Could not show", "decrypted but holds no text", "({urn:xmpp:reactions:0}reactions)."}},
		{fmt.Errorf("%w: bad", omemoxmpp.ErrMalformed), false, 0, []string{"an unknown device", "malformed"}},
		{errOMEMOUnavailable, false, 7, []string{"not set up"}},
		{errors.New("boom"), true, 9, []string{"you (bob@example.org, from another client)", "device 9", "internal error"}},
	} {
		got := decryptFailureNotice("bob@example.org", tc.device, tc.fromMe, tc.err)
		if !strings.HasPrefix(got, "Could not decrypt an OMEMO message from ") && !strings.HasPrefix(got, "Could not show an OMEMO message from ") {
			t.Errorf("%v: %q", tc.err, got)
		}
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%v: %q lacks %q", tc.err, got, w)
			}
		}
	}
}

func TestDeviceChangeNotice(t *testing.T) {
	set := func(ids ...uint32) map[uint32]bool {
		m := map[uint32]bool{}
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	if got := deviceChangeNotice("bob@example.org", set(1, 2), set(2, 1), omemo.PolicyBTBV, false); got != "" {
		t.Errorf("no change gave %q", got)
	}
	got := deviceChangeNotice("bob@example.org", set(1, 2), set(2, 30, 4), omemo.PolicyBTBV, false)
	for _, w := range []string{"bob@example.org's OMEMO devices changed", "New: 4, 30", "trusted blindly", "Removed: 1."} {
		if !strings.Contains(got, w) {
			t.Errorf("%q lacks %q", got, w)
		}
	}
	for _, tc := range []struct {
		policy   omemo.TrustPolicy
		verified bool
	}{{omemo.PolicyBTBV, true}, {omemo.PolicyManual, false}} {
		got := deviceChangeNotice("bob@example.org", set(1), set(1, 2), tc.policy, tc.verified)
		if !strings.Contains(got, "not trusted until you trust or verify it") || strings.Contains(got, "blindly") {
			t.Errorf("policy %v verified %v: %q", tc.policy, tc.verified, got)
		}
	}
}

func TestEncryptionFailureText(t *testing.T) {
	devErr := &omemoxmpp.DeviceError{JID: "bob@example.org", Devices: map[omemo.Address]error{{JID: "bob@example.org", Device: 1}: omemo.ErrUntrusted}}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("x: %w", omemoxmpp.ErrNoDevices), "has no OMEMO device"},
		{devErr, "none of the contact's 1 OMEMO device(s) is trusted"},
		{errOMEMOUnavailable, "not ready"},
		{errors.New("boom"), "encryption failed: boom"},
	} {
		got := encryptionFailureText(tc.err)
		if !strings.HasPrefix(got, "Not sent: this chat is OMEMO-encrypted") || !strings.Contains(got, tc.want) {
			t.Errorf("%v: %q", tc.err, got)
		}
	}
}

func TestOMEMOConfig(t *testing.T) {
	for _, tc := range []struct {
		policy string
		want   omemo.TrustPolicy
		err    bool
	}{{"", omemo.PolicyBTBV, false}, {"btbv", omemo.PolicyBTBV, false}, {"manual", omemo.PolicyManual, false}, {"tofu", 0, true}} {
		c := OMEMOConfig{TrustPolicy: tc.policy}
		err := c.validate()
		if tc.err {
			if !errors.Is(err, ErrBadTrustPolicy) {
				t.Errorf("%q: err %v", tc.policy, err)
			}
			continue
		}
		if err != nil || c.Policy() != tc.want {
			t.Errorf("%q: %v, %v", tc.policy, c.Policy(), err)
		}
	}
}

func TestAnnounceFailureText(t *testing.T) {
	refused := errors.New("pubsub: resource-constraint: Unknown field")
	for _, tc := range []struct {
		name string
		st   map[omemo.Version]omemoxmpp.AnnounceResult
		want []string // "" entries: want no text
	}{
		{"none tried", nil, nil},
		{"both up", map[omemo.Version]omemoxmpp.AnnounceResult{omemo.V2: {}, omemo.V03: {}}, nil},
		{"2 refused", map[omemo.Version]omemoxmpp.AnnounceResult{omemo.V2: {Err: refused}, omemo.V03: {}},
			[]string{"OMEMO 2 (pubsub: resource-constraint: Unknown field)", "keeps retrying"}},
		{"both refused", map[omemo.Version]omemoxmpp.AnnounceResult{omemo.V2: {Err: refused}, omemo.V03: {Err: refused}},
			[]string{"OMEMO 2 (", "; OMEMO 0.3 ("}},
	} {
		got := announceFailureText(tc.st)
		if (got == "") != (len(tc.want) == 0) {
			t.Errorf("%s: %q", tc.name, got)
		}
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q lacks %q", tc.name, got, w)
			}
		}
	}
}

package bridge

import (
	"context"
	"errors"
	"strings"
	"testing"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"

	"github.com/mxomemo/xmpp-bridge/msgconv"
	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// TestOMEMOTrustCommands runs the trust operations behind the commands
// against the fixture's contact: list, verify (fingerprint checked),
// distrust (then nothing can be sent), trust again.
func TestOMEMOTrustCommands(t *testing.T) {
	f := newInboxFixture(t)
	ctx := context.Background()
	devices, err := f.c.listDevices(ctx, f.bob)
	if err != nil {
		t.Fatal(err)
	}
	bobDev := f.bobXC.Manager().DeviceID()
	if len(devices) != 1 || devices[0].ID != bobDev || devices[0].Fingerprint != f.bobXC.Manager().Fingerprint() || !devices[0].Trusted {
		t.Fatalf("devices %+v, want bob's one device, trusted (blind trust records it as trusted)", devices)
	}
	text := formatDevices(f.bob.String(), devices)
	if !strings.HasSuffix(text, "`"+devices[0].Fingerprint+"` - trusted") || !strings.Contains(text, "(OMEMO 2, 0.3)") {
		t.Errorf("formatDevices: %q", text)
	}
	if _, err := f.c.setDeviceTrust(ctx, f.bob, bobDev, "00000000", omemo.TrustVerified); !errors.Is(err, xmppclient.ErrFingerprintMismatch) {
		t.Fatalf("verify with a wrong fingerprint: %v", err)
	}
	if _, err := f.c.setDeviceTrust(ctx, f.bob, bobDev+1, "", omemo.TrustVerified); !errors.Is(err, xmppclient.ErrUnknownDevice) {
		t.Fatalf("verify an unknown device: %v", err)
	}
	d, err := f.c.setDeviceTrust(ctx, f.bob, bobDev, strings.ToUpper(devices[0].Fingerprint), omemo.TrustVerified)
	if err != nil || d.Level != omemo.TrustVerified {
		t.Fatalf("verify: %+v, %v", d, err)
	}
	if _, err := f.c.setDeviceTrust(ctx, f.bob, bobDev, "", omemo.TrustDistrusted); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.omemoClient().Encrypt(ctx, f.bob, "x"); !errors.Is(err, omemoxmpp.ErrNoTrustedDevices) {
		t.Fatalf("encrypt for a distrusted contact: %v", err)
	} else if !strings.Contains(encryptionFailureText(err), "none of the contact's 1 OMEMO device(s)") {
		t.Errorf("failure text %q", encryptionFailureText(err))
	}
	if _, err := f.c.setDeviceTrust(ctx, f.bob, bobDev, "", omemo.TrustTrusted); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.omemoClient().Encrypt(ctx, f.bob, "x"); err != nil {
		t.Fatalf("encrypt after trusting again: %v", err)
	}
}

// TestOMEMOManualTrust: with trust_policy manual a new device is neither
// used for sending nor silently trusted when it sends.
func TestOMEMOManualTrust(t *testing.T) {
	f := newInboxFixture(t, func(c *Config) { c.OMEMO.TrustPolicy = "manual" })
	ctx := context.Background()
	in, err := f.receive(t, f.stanza(t, "u1", f.encrypt(t, f.bobXC, "from an undecided device")))
	wantBody(t, in, err, "from an undecided device")
	if in.OMEMO.Trusted {
		t.Fatal("an undecided device's message counts as trusted")
	}
	content := msgconv.MatrixFromBody(in.Body)
	// Already encrypted, so the hook has nothing to save.
	f.c.omemoConvert(ctx, &bridgev2.Portal{Portal: &database.Portal{Metadata: &portal.Metadata{OMEMO: true}}}, in, content)
	if !strings.HasPrefix(content.Body, untrustedPrefix(in.OMEMO.Device)) {
		t.Errorf("untrusted message shown as %q", content.Body)
	}
	if _, err := f.c.omemoClient().Encrypt(ctx, f.bob, "x"); !errors.Is(err, omemoxmpp.ErrNoTrustedDevices) {
		t.Fatalf("encrypt for an undecided device: %v", err)
	}
	if _, err := f.c.setDeviceTrust(ctx, f.bob, in.OMEMO.Device, "", omemo.TrustTrusted); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.omemoClient().Encrypt(ctx, f.bob, "x"); err != nil {
		t.Fatalf("encrypt after trust: %v", err)
	}
}

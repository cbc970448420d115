package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/status"

	"github.com/mxomemo/xmpp-bridge/internal/credential"
)

func credentialConnector(t *testing.T, key string) *Connector {
	t.Helper()
	xc := &Connector{Config: Config{PingInterval: 60, MaxReconnectDelay: 300, DisplaynameTemplate: "{{.Name}}", CredentialKey: key}}
	if err := xc.Config.Validate(); err != nil {
		t.Fatal(err)
	}
	return xc
}

func loadTestClient(xc *Connector, loginID networkid.UserLoginID, meta *UserLoginMetadata) *Client {
	c := newClient(xc, &bridgev2.UserLogin{UserLogin: &database.UserLogin{ID: loginID, Metadata: meta}})
	c.unsealPassword(context.Background())
	return c
}

// The metadata a login stores has the sealed password only, and loading it
// gives the password back to connConfig; another key, another row or no
// password leave the login without one and with a bad-credentials state
// that says why.
func TestStoredPassword(t *testing.T) {
	xc := credentialConnector(t, testCredentialKey)
	otherKey, err := credential.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	const pw = "hunter2-secret"
	sealed, err := xc.sealPassword(pw, "alice@example.org", &UserLoginMetadata{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(&UserLoginMetadata{JID: "alice@example.org", PasswordEnc: sealed})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), pw) || strings.Contains(string(raw), `"password"`) {
		t.Fatalf("stored metadata %s has the plaintext password", raw)
	}
	for _, tc := range []struct {
		name    string
		xc      *Connector
		otherID bool
		meta    UserLoginMetadata
		want    string
		err     error
		message string
	}{
		{"sealed", xc, false, UserLoginMetadata{PasswordEnc: sealed}, pw, nil, ""},
		{"another key", credentialConnector(t, otherKey), false, UserLoginMetadata{PasswordEnc: sealed}, "", credential.ErrWrongKey, "does not match the one the password was stored with"},
		{"no key", &Connector{}, false, UserLoginMetadata{PasswordEnc: sealed}, "", credential.ErrNoKey, "does not match the one the password was stored with"},
		{"another row", xc, true, UserLoginMetadata{PasswordEnc: sealed}, "", credential.ErrTampered, "cannot be decrypted"},
		{"nothing stored", xc, false, UserLoginMetadata{}, "", credential.ErrNoPassword, "no stored password"},
		// Without a key to seal it with, a legacy password is still used.
		{"legacy without key", &Connector{}, false, UserLoginMetadata{Password: "old-secret"}, "old-secret", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			meta := tc.meta
			meta.JID = "alice@example.org"
			// A row whose metadata was copied from alice's.
			loginID := networkid.UserLoginID("alice@example.org")
			if tc.otherID {
				loginID = "mallory@example.org"
			}
			c := loadTestClient(tc.xc, loginID, &meta)
			if got := c.connConfig().Password; got != tc.want {
				t.Errorf("connConfig().Password = %q, want %q", got, tc.want)
			}
			if !errors.Is(c.credErr, tc.err) {
				t.Fatalf("credErr = %v, want %v", c.credErr, tc.err)
			}
			if tc.err == nil {
				return
			}
			if c.IsLoggedIn() {
				t.Error("IsLoggedIn with a password that cannot be read")
			}
			st := credentialState(c.credErr)
			if st.StateEvent != status.StateBadCredentials || !strings.Contains(st.Message, tc.message) {
				t.Errorf("state = %s %q, want BAD_CREDENTIALS saying %q", st.StateEvent, st.Message, tc.message)
			}
			if meta.PasswordEnc != tc.meta.PasswordEnc {
				t.Error("the stored password was changed although it could not be read")
			}
		})
	}
}

// TestSealBindsServer: the sealed password opens only with the connection
// settings it was stored with, so a database writer cannot send it to
// another server; a seal of an older version (login ID only) is accepted
// once and sealed again with the settings.
func TestSealBindsServer(t *testing.T) {
	xc := credentialConnector(t, testCredentialKey)
	const pw = "hunter2-secret"
	const id = networkid.UserLoginID("alice@example.org")
	stored := UserLoginMetadata{JID: "alice@example.org", Host: "xmpp.example.org", Port: 5222}
	sealed, err := xc.sealPassword(pw, id, &stored)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(*UserLoginMetadata)
		ok     bool
	}{
		{"as stored", func(*UserLoginMetadata) {}, true},
		{"host case", func(m *UserLoginMetadata) { m.Host = "XMPP.example.org" }, true},
		{"another host", func(m *UserLoginMetadata) { m.Host = "evil.example.net" }, false},
		{"another port", func(m *UserLoginMetadata) { m.Port = 5223 }, false},
		{"direct TLS switched", func(m *UserLoginMetadata) { m.DirectTLS = true }, false},
		{"self-signed host added", func(m *UserLoginMetadata) { m.InsecureTLSHost = "xmpp.example.org" }, false},
		{"server removed (SRV lookup instead)", func(m *UserLoginMetadata) { m.Host, m.Port = "", 0 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			meta := stored
			meta.PasswordEnc = sealed
			tc.change(&meta)
			c := loadTestClient(xc, id, &meta)
			if got := c.connConfig().Password == pw; got != tc.ok {
				t.Fatalf("password available = %v, want %v (credErr %v)", got, tc.ok, c.credErr)
			}
			if !tc.ok && !errors.Is(c.credErr, credential.ErrTampered) {
				t.Errorf("credErr = %v, want ErrTampered", c.credErr)
			}
		})
	}

	// A seal from before: bound to the login ID only.
	old, err := xc.Config.credentialKey.Seal(pw, string(id))
	if err != nil {
		t.Fatal(err)
	}
	meta := stored
	meta.PasswordEnc = old
	got, reseal, err := openPassword(xc.Config.credentialKey, id, &meta)
	if err != nil || got != pw || !reseal {
		t.Fatalf("old seal: %q, reseal %v, %v; want the password, to be sealed again", got, reseal, err)
	}
	if meta.PasswordEnc, err = xc.sealPassword(pw, id, &meta); err != nil {
		t.Fatal(err)
	}
	moved := meta
	moved.Host = "evil.example.net"
	if _, _, err := openPassword(xc.Config.credentialKey, id, &moved); !errors.Is(err, credential.ErrTampered) {
		t.Errorf("the resealed password with another host: %v", err)
	}
}

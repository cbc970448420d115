package bridge

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	up "go.mau.fi/util/configupgrade"
	"gopkg.in/yaml.v3"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		return Config{PingInterval: 60, MaxReconnectDelay: 300, DisplaynameTemplate: "{{.Name}} (XMPP)", CredentialKey: testCredentialKey}
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   error
	}{
		{"valid", func(*Config) {}, nil},
		{"ping off", func(c *Config) { c.PingInterval = 0 }, nil},
		{"ping too fast", func(c *Config) { c.PingInterval = 2 }, ErrBadPingInterval},
		{"negative ping", func(c *Config) { c.PingInterval = -1 }, ErrBadPingInterval},
		{"no reconnect delay", func(c *Config) { c.MaxReconnectDelay = 0 }, ErrBadReconnectDelay},
		{"bad template", func(c *Config) { c.DisplaynameTemplate = "{{.Name" }, ErrBadDisplaynameTemplate},
		{"unknown field", func(c *Config) { c.DisplaynameTemplate = "{{.Nickname}}" }, ErrBadDisplaynameTemplate},
		{"empty template", func(c *Config) { c.DisplaynameTemplate = " " }, ErrBadDisplaynameTemplate},
		{"insecure host", func(c *Config) { c.InsecureTLSHosts = []string{"localhost"} }, nil},
		{"insecure wildcard", func(c *Config) { c.InsecureTLSHosts = []string{"*"} }, ErrBadInsecureHost},
		{"insecure with port", func(c *Config) { c.InsecureTLSHosts = []string{"localhost:5222"} }, ErrBadInsecureHost},
		{"insecure empty", func(c *Config) { c.InsecureTLSHosts = []string{""} }, ErrBadInsecureHost},
		{"credential key missing", func(c *Config) { c.CredentialKey = "" }, ErrBadCredentialKey},
		{"credential key placeholder", func(c *Config) { c.CredentialKey = "generate" }, ErrBadCredentialKey},
		{"credential key short", func(c *Config) { c.CredentialKey = "c2hvcnQ=" }, ErrBadCredentialKey},
		{"presence poll rate", func(c *Config) { c.Presence.PollPerSecond = 50 }, nil},
		{"presence poll rate default", func(c *Config) { c.Presence.PollPerSecond = 0 }, nil},
		{"negative presence poll rate", func(c *Config) { c.Presence.PollPerSecond = -1 }, ErrBadPresence},
		{"presence poll too fast", func(c *Config) { c.Presence.PollSeconds = 2 }, ErrBadPresence},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mutate(&c)
			err := c.Validate()
			if tc.want == nil && err != nil {
				t.Fatalf("Validate() = %v", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Validate() = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestExampleNetworkConfig(t *testing.T) {
	var c Config
	if err := yaml.Unmarshal([]byte(ExampleConfig), &c); err != nil {
		t.Fatal(err)
	}
	if c.CredentialKey != "generate" {
		t.Errorf("the example's credential_key is %q, want the \"generate\" placeholder", c.CredentialKey)
	}
	c.CredentialKey = testCredentialKey // what the upgrader writes on the first start
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.AllowPlainAuth || len(c.InsecureTLSHosts) != 0 {
		t.Error("the example must not weaken security by default")
	}
	if got := c.FormatDisplayname("Bob", "bob@example.org"); got != "Bob (XMPP)" {
		t.Errorf("FormatDisplayname = %q", got)
	}
}

// testCredentialKey is a fixed valid network.credential_key.
const testCredentialKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// The upgrader replaces an empty or "generate" credential_key with a new
// random key and saves it; a real key is kept as it is.
func TestUpgradeGeneratesCredentialKey(t *testing.T) {
	upgrade := func(t *testing.T, cfg string) Config {
		t.Helper()
		path := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := up.Do(path, true, &up.StructUpgrader{SimpleUpgrader: upgradeConfig, Base: ExampleConfig}); err != nil {
			t.Fatal(err)
		}
		saved, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var c Config
		if err := yaml.Unmarshal(saved, &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	seen := map[string]bool{}
	for _, tc := range []struct{ name, cfg string }{
		{"placeholder", ExampleConfig},
		{"empty", "credential_key: \"\"\n"},
		{"missing", "ping_interval: 60\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := upgrade(t, tc.cfg)
			if err := c.Validate(); err != nil {
				t.Fatalf("the upgraded config is invalid: %v", err)
			}
			if seen[c.CredentialKey] {
				t.Fatal("the same key was generated twice")
			}
			seen[c.CredentialKey] = true
		})
	}
	t.Run("kept", func(t *testing.T) {
		if c := upgrade(t, "credential_key: "+testCredentialKey+"\n"); c.CredentialKey != testCredentialKey {
			t.Fatalf("credential_key = %q after the upgrade, want the configured key", c.CredentialKey)
		}
	})
}

package main

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mxomemo/xmpp-bridge/bridge"
)

// The committed example-config.yaml must be exactly what `bridge -e` writes.
func TestExampleConfigFileIsGenerated(t *testing.T) {
	want, err := exampleConfig(newBridgeMain())
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../example-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatal("example-config.yaml is stale: regenerate it with `go run -tags goolm ./cmd/bridge -e -c - > example-config.yaml`")
	}
}

func TestExampleConfigContent(t *testing.T) {
	cfg, err := exampleConfig(newBridgeMain())
	if err != nil {
		t.Fatal(err)
	}
	var parsed struct {
		Network    bridge.Config `yaml:"network"`
		Encryption struct {
			Allow    bool `yaml:"allow"`
			Default  bool `yaml:"default"`
			Require  bool `yaml:"require"`
			SelfSign bool `yaml:"self_sign"`
		} `yaml:"encryption"`
		Backfill struct {
			Enabled            bool `yaml:"enabled"`
			MaxInitialMessages int  `yaml:"max_initial_messages"`
			Queue              struct {
				Enabled bool `yaml:"enabled"`
			} `yaml:"queue"`
		} `yaml:"backfill"`
		AppService struct {
			ID  string `yaml:"id"`
			Bot struct {
				Username string `yaml:"username"`
			} `yaml:"bot"`
		} `yaml:"appservice"`
	}
	if err := yaml.Unmarshal([]byte(cfg), &parsed); err != nil {
		t.Fatalf("example config is not valid YAML: %v", err)
	}
	if e := parsed.Encryption; !e.Allow || !e.Default || e.Require || !e.SelfSign {
		t.Errorf("encryption = %+v, want allow, default and self_sign on, require off", e)
	}
	if b := parsed.Backfill; !b.Enabled || b.MaxInitialMessages <= 0 || b.Queue.Enabled {
		t.Errorf("backfill = %+v, want enabled with initial messages, queue off", b)
	}
	if parsed.AppService.ID != "xmpp" || parsed.AppService.Bot.Username != "xmppbot" {
		t.Errorf("appservice = %+v", parsed.AppService)
	}
	// The placeholder the upgrader replaces with a random key on the first start.
	if parsed.Network.CredentialKey != "generate" {
		t.Errorf("network.credential_key = %q, want \"generate\"", parsed.Network.CredentialKey)
	}
	parsed.Network.CredentialKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	if err := parsed.Network.Validate(); err != nil {
		t.Errorf("network section does not validate: %v", err)
	}
	if strings.Count(cfg, ": true\n") < 2 {
		t.Error("no true values at all?")
	}
}

func TestEnableBackfillRefusesUnknownTemplate(t *testing.T) {
	if _, err := enableBackfill("backfill:\n    enabled: false\n"); err == nil {
		t.Error("expected an error for an unknown backfill section")
	}
}

func TestEnableEncryptionRefusesUnknownTemplate(t *testing.T) {
	if _, err := enableEncryption("bridge:\n    allow: false\n"); err == nil {
		t.Error("expected an error without an encryption section")
	}
	got, err := enableEncryption("x:\n    allow: false\nencryption:\n    allow: false\n    default: false\n    self_sign: false\n")
	if err != nil {
		t.Fatal(err)
	}
	if got != "x:\n    allow: false\nencryption:\n    allow: true\n    default: true\n    self_sign: true\n" {
		t.Errorf("got %q", got)
	}
}

func TestExampleConfigRequested(t *testing.T) {
	for _, tc := range []struct {
		args []string
		path string
		ok   bool
	}{
		{nil, "config.yaml", false},
		{[]string{"-c", "x.yaml"}, "x.yaml", false},
		{[]string{"-e"}, "config.yaml", true},
		{[]string{"-e", "-c", "-"}, "-", true},
		{[]string{"--config", "a.yaml", "--generate-example-config"}, "a.yaml", true},
		{[]string{"--config=b.yaml", "-e"}, "b.yaml", true},
		{[]string{"-ec", "c.yaml"}, "c.yaml", true},
		{[]string{"-n", "-c", "d.yaml", "--ignore-unsupported-server"}, "d.yaml", false},
		{[]string{"-g", "-r", "reg.yaml"}, "config.yaml", false},
	} {
		path, ok := exampleConfigRequested(tc.args)
		if path != tc.path || ok != tc.ok {
			t.Errorf("exampleConfigRequested(%q) = %q, %v; want %q, %v", tc.args, path, ok, tc.path, tc.ok)
		}
	}
}

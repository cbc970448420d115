package bridge

import (
	"errors"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		return Config{PingInterval: 60, MaxReconnectDelay: 300, DisplaynameTemplate: "{{.Name}} (XMPP)"}
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

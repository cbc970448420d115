package bridge

import (
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"text/template"
	"time"

	up "go.mau.fi/util/configupgrade"

	"github.com/mxomemo/xmpp-bridge/internal/credential"
	"github.com/mxomemo/xmpp-bridge/metrics"
)

//go:embed example-config.yaml
var ExampleConfig string

// Config is the network section of the bridge config.
type Config struct {
	InsecureTLSHosts []string `yaml:"insecure_tls_hosts"`
	// MediaPrivateHosts may be downloaded from although they resolve to
	// private addresses; MediaInsecureTLSHosts without a verified
	// certificate. Admin settings only: no login can widen either.
	MediaPrivateHosts     []string       `yaml:"media_private_hosts"`
	MediaInsecureTLSHosts []string       `yaml:"media_insecure_tls_hosts"`
	AllowPlainAuth        bool           `yaml:"allow_plain_auth"`
	PingInterval          int            `yaml:"ping_interval"`
	MaxReconnectDelay     int            `yaml:"max_reconnect_delay"`
	SendWait              int            `yaml:"send_wait"`
	DisplaynameTemplate   string         `yaml:"displayname_template"`
	MaxMediaSizeMB        int            `yaml:"max_media_size_mb"`
	OMEMO                 OMEMOConfig    `yaml:"omemo"`
	Presence              PresenceConfig `yaml:"presence"`
	Metrics               metrics.Config `yaml:"metrics"`
	// CredentialKey seals the stored XMPP passwords (internal/credential).
	CredentialKey string `yaml:"credential_key"`

	displaynameTemplate *template.Template
	credentialKey       *credential.Key
}

// Config validation errors.
var (
	ErrBadDisplaynameTemplate = errors.New("bridge: network.displayname_template is invalid")
	ErrBadPingInterval        = errors.New("bridge: network.ping_interval must be 0 or at least 5 seconds")
	ErrBadReconnectDelay      = errors.New("bridge: network.max_reconnect_delay must be at least 1 second")
	ErrBadSendWait            = errors.New("bridge: network.send_wait must not be negative (0 means 300)")
	ErrBadInsecureHost        = errors.New("bridge: network.insecure_tls_hosts, media_private_hosts and media_insecure_tls_hosts entries must be plain host names")
	ErrBadMaxMediaSize        = errors.New("bridge: network.max_media_size_mb must not be negative (0 means 100)")
	ErrBadCredentialKey       = errors.New("bridge: network.credential_key must be 32 random bytes in base64 (\"generate\" makes one when the config is saved)")
)

// DisplaynameParams are the values displayname_template can use.
type DisplaynameParams struct {
	Name string
	JID  string
}

// Validate checks the config and prepares its templates.
func (c *Config) Validate() error {
	tpl, err := template.New("displayname").Parse(c.DisplaynameTemplate)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadDisplaynameTemplate, err)
	}
	if strings.TrimSpace(c.DisplaynameTemplate) == "" {
		return fmt.Errorf("%w: empty", ErrBadDisplaynameTemplate)
	}
	if err := tpl.Execute(new(strings.Builder), DisplaynameParams{Name: "n", JID: "n@example.org"}); err != nil {
		return fmt.Errorf("%w: %w", ErrBadDisplaynameTemplate, err)
	}
	if c.PingInterval != 0 && c.PingInterval < 5 {
		return fmt.Errorf("%w (got %d)", ErrBadPingInterval, c.PingInterval)
	}
	if c.MaxReconnectDelay < 1 {
		return fmt.Errorf("%w (got %d)", ErrBadReconnectDelay, c.MaxReconnectDelay)
	}
	if c.SendWait < 0 {
		return fmt.Errorf("%w (got %d)", ErrBadSendWait, c.SendWait)
	}
	for _, hosts := range [][]string{c.InsecureTLSHosts, c.MediaPrivateHosts, c.MediaInsecureTLSHosts} {
		for _, h := range hosts {
			if h == "" || strings.ContainsAny(h, " /:@*") {
				return fmt.Errorf("%w: %q", ErrBadInsecureHost, h)
			}
		}
	}
	if c.MaxMediaSizeMB < 0 {
		return fmt.Errorf("%w (got %d)", ErrBadMaxMediaSize, c.MaxMediaSizeMB)
	}
	key, err := credential.ParseKey(c.CredentialKey)
	if err != nil {
		// Never echo the value: it is a secret, and may be nearly right.
		return ErrBadCredentialKey
	}
	if err := c.OMEMO.validate(); err != nil {
		return err
	}
	if err := c.Presence.validate(); err != nil {
		return err
	}
	if err := c.Metrics.Validate(); err != nil {
		return err
	}
	c.displaynameTemplate = tpl
	c.credentialKey = key
	return nil
}

// FormatDisplayname renders displayname_template.
func (c *Config) FormatDisplayname(name, bareJID string) string {
	if c.displaynameTemplate == nil {
		return name
	}
	var buf strings.Builder
	if err := c.displaynameTemplate.Execute(&buf, DisplaynameParams{Name: name, JID: bareJID}); err != nil {
		return name
	}
	return buf.String()
}

func (c *Config) pingInterval() time.Duration {
	return time.Duration(c.PingInterval) * time.Second
}

func (c *Config) maxReconnectDelay() time.Duration {
	if c.MaxReconnectDelay < 1 {
		return 5 * time.Minute
	}
	return time.Duration(c.MaxReconnectDelay) * time.Second
}

// sendWait bounds how long a Matrix message waits for its login's XMPP
// session (after a restart, while reconnecting) before it fails with a notice.
func (c *Config) sendWait() time.Duration {
	if c.SendWait < 1 {
		return 5 * time.Minute
	}
	return time.Duration(c.SendWait) * time.Second
}

func upgradeConfig(helper up.Helper) {
	helper.Copy(up.List, "insecure_tls_hosts")
	helper.Copy(up.List, "media_private_hosts")
	helper.Copy(up.List, "media_insecure_tls_hosts")
	helper.Copy(up.Bool, "allow_plain_auth")
	helper.Copy(up.Int, "ping_interval")
	helper.Copy(up.Int, "max_reconnect_delay")
	helper.Copy(up.Int, "send_wait")
	helper.Copy(up.Str, "displayname_template")
	helper.Copy(up.Int, "max_media_size_mb")
	helper.Copy(up.Str, "omemo", "trust_policy")
	helper.Copy(up.Str|up.Null, "omemo", "device_label")
	helper.Copy(up.Bool, "omemo", "default")
	upgradePresenceConfig(helper)
	metrics.UpgradeConfig(helper, "metrics")
	// Like bridgev2's pickle_key: the upgrader writes a new key into the
	// config file, which must therefore be writable on the first start.
	if key, ok := helper.Get(up.Str, "credential_key"); !ok || key == "" || key == "generate" {
		generated, err := credential.GenerateKey()
		if err != nil {
			panic(err) // crypto/rand does not fail on supported systems
		}
		helper.Set(up.Str, generated, "credential_key")
	} else {
		helper.Copy(up.Str, "credential_key")
	}
}

// GetConfig implements bridgev2.NetworkConnector.
func (xc *Connector) GetConfig() (example string, data any, upgrader up.Upgrader) {
	// mxmain indents every line; a trailing newline would leave a line of spaces.
	return strings.TrimRight(ExampleConfig, "\n"), &xc.Config, up.SimpleUpgrader(upgradeConfig)
}

// ValidateConfig implements bridgev2.ConfigValidatingNetwork.
func (xc *Connector) ValidateConfig() error {
	return xc.Config.Validate()
}

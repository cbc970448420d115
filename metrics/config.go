package metrics

import (
	"errors"
	"fmt"
	"net"

	up "go.mau.fi/util/configupgrade"
)

// DefaultListen is loopback-only: exposing metrics is a decision, not a default.
const DefaultListen = "127.0.0.1:8001"

// Config is the `metrics:` block of the bridge's `network:` config section.
type Config struct {
	// Enabled turns the HTTP server and the collectors on. Off by default.
	Enabled bool `yaml:"enabled"`
	// Listen is the host:port of the server (/metrics, /healthz, /readyz).
	Listen string `yaml:"listen"`
}

// ExampleConfig is the block to put under `network:` in example-config.yaml (indented by the caller).
const ExampleConfig = `# Prometheus metrics and health endpoints (/metrics, /healthz, /readyz).
metrics:
    # Off by default.
    enabled: false
    # host:port to listen on. Use 0.0.0.0:8001 in a container for a scraper on another host.
    listen: 127.0.0.1:8001
`

var errNoListen = errors.New("metrics: enabled but metrics.listen is empty")

// Validate reports a config that cannot work; a disabled config is always valid.
func (c Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	if c.Listen == "" {
		return errNoListen
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("metrics: invalid metrics.listen %q: %w", c.Listen, err)
	}
	return nil
}

// UpgradeConfig copies the metrics block from an old config; call it from the network
// section's configupgrade upgrader with the block's path (normally "metrics").
func UpgradeConfig(helper up.Helper, path ...string) {
	key := func(k string) []string { return append(append([]string{}, path...), k) }
	helper.Copy(up.Bool, key("enabled")...)
	helper.Copy(up.Str, key("listen")...)
}

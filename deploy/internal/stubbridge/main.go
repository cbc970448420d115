// Command stubbridge is a network-less bridgev2 bridge for deployment tests: it has the real
// mxmain front end (flags, example config, registration, database, appservice listener and
// exit codes) and the same deployment wiring cmd/bridge needs (metrics server, foreign-database
// check), but no XMPP. scripts/firstrun-test.sh and scripts/docker-test.sh use it with
// BRIDGE_PKG=./deploy/internal/stubbridge while cmd/bridge is not a real bridge yet, and it is
// the reference for wiring metrics and deploy into cmd/bridge and bridge/.
package main

import (
	"context"
	"errors"
	"strings"

	up "go.mau.fi/util/configupgrade"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/matrix/mxmain"

	"github.com/mxomemo/xmpp-bridge/deploy"
	"github.com/mxomemo/xmpp-bridge/metrics"
)

var (
	Tag       = "unknown"
	Commit    = "unknown"
	BuildTime = "unknown"
)

// config is what bridge/config.go would hold; only the metrics block matters here.
type config struct {
	Metrics metrics.Config `yaml:"metrics"`
}

type connector struct {
	br      *bridgev2.Bridge
	cfg     config
	Metrics *metrics.Metrics
}

var _ bridgev2.NetworkConnector = (*connector)(nil)
var _ bridgev2.StoppableNetwork = (*connector)(nil)

func (c *connector) Init(br *bridgev2.Bridge) { c.br = br }

func (c *connector) Start(ctx context.Context) error {
	var err error
	if c.Metrics, err = metrics.New(c.cfg.Metrics); err != nil {
		return err
	}
	return c.Metrics.Start(ctx)
}

func (c *connector) Stop() { _ = c.Metrics.Stop(context.Background()) }

func (c *connector) GetName() bridgev2.BridgeName {
	return bridgev2.BridgeName{
		DisplayName:      "XMPP (stub)",
		NetworkURL:       "https://xmpp.org",
		NetworkID:        "xmpp",
		BeeperBridgeType: "github.com/mxomemo/xmpp-bridge/deploy/internal/stubbridge",
		DefaultPort:      29320,
	}
}

func (c *connector) GetDBMetaTypes() database.MetaTypes { return database.MetaTypes{} }

func (c *connector) GetCapabilities() *bridgev2.NetworkGeneralCapabilities {
	return &bridgev2.NetworkGeneralCapabilities{}
}

func (c *connector) GetConfig() (string, any, up.Upgrader) {
	return metrics.ExampleConfig, &c.cfg, up.SimpleUpgrader(func(helper up.Helper) {
		metrics.UpgradeConfig(helper, "metrics")
	})
}

func (c *connector) LoadUserLogin(context.Context, *bridgev2.UserLogin) error {
	return errors.New("stubbridge: no network")
}

func (c *connector) GetLoginFlows() []bridgev2.LoginFlow { return nil }

func (c *connector) CreateLogin(context.Context, *bridgev2.User, string) (bridgev2.LoginProcess, error) {
	return nil, errors.New("stubbridge: no network")
}

func (c *connector) GetBridgeInfoVersion() (int, int) { return 1, 1 }

func main() {
	c := &connector{}
	m := mxmain.BridgeMain{
		Name:        "xmpp-bridge",
		Description: "An XMPP ⇄ Matrix puppeting bridge with OMEMO (deployment stub).",
		URL:         "https://github.com/mxomemo/xmpp-bridge",
		Version:     "0.1.0",
		Connector:   c,
	}
	m.PostInit = func() {
		deploy.MustUseOwnDatabase(m.Log.WithContext(context.Background()), &m)
	}
	m.PostStart = func() {
		c.Metrics.SetReadyCheck(func(ctx context.Context) error {
			if !m.Matrix.AS.Ready {
				return errors.New("appservice not ready")
			}
			return m.DB.RawDB.PingContext(ctx)
		})
	}
	m.InitVersion(strings.TrimSpace(Tag), Commit, BuildTime)
	m.Run()
}

// Command bridge runs the XMPP <-> Matrix puppeting bridge.
package main

import (
	"context"
	"errors"
	"os"

	"maunium.net/go/mautrix/bridgev2/matrix/mxmain"

	"github.com/mxomemo/xmpp-bridge/bridge"
	"github.com/mxomemo/xmpp-bridge/deploy"
)

// Set by the build: go build -ldflags "-X main.Tag=... -X main.Commit=... -X 'main.BuildTime=...'"
var (
	Tag       = "unknown"
	Commit    = "unknown"
	BuildTime = "unknown"
)

func newBridgeMain() *mxmain.BridgeMain {
	return &mxmain.BridgeMain{
		Name:        "mxomemo-xmpp-bridge",
		URL:         "https://github.com/mxomemo/xmpp-bridge",
		Description: "A Matrix-XMPP puppeting bridge with OMEMO.",
		Version:     "0.1.0",
		Connector:   &bridge.Connector{},
	}
}

func main() {
	m := newBridgeMain()
	m.InitVersion(Tag, Commit, BuildTime)
	m.PostInit = func() { deploy.MustUseOwnDatabase(m.Log.WithContext(context.Background()), m) }
	m.PostStart = func() {
		m.Connector.(*bridge.Connector).Metrics.SetReadyCheck(func(ctx context.Context) error {
			if !m.Matrix.AS.Ready {
				return errors.New("appservice not ready")
			}
			return m.DB.RawDB.PingContext(ctx)
		})
	}
	// mxmain's -e writes its template with end-to-bridge encryption off;
	// ours turns it on, so -e is answered here.
	if path, ok := exampleConfigRequested(os.Args[1:]); ok {
		os.Exit(writeExampleConfig(m, path))
	}
	// mxmain's Run, with the database section tuned between loading the config and opening
	// the pool (deploy.TuneDatabase).
	m.PreInit()
	tuned := deploy.TuneDatabase(&m.Config.Database.PoolConfig)
	m.Init()
	for _, change := range tuned {
		m.Log.Info().Str("change", change).Msg("Database pool tuned")
	}
	m.Start()
	exitCode := m.WaitForInterrupt()
	m.Stop()
	os.Exit(exitCode)
}

// Package bridge is the bridgev2 network connector for XMPP: Connector is the
// process-wide part, Client the per-login part, the glue between bridgev2
// and the login's XMPP client (package xmppclient).
package bridge

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/commands"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/mxomemo/xmpp-bridge/metrics"
	"github.com/mxomemo/xmpp-bridge/migrations"
	"github.com/mxomemo/xmpp-bridge/puppet"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// Connector implements bridgev2.NetworkConnector.
type Connector struct {
	Bridge *bridgev2.Bridge
	Config Config
	// DB is the bridge database with our own upgrade table.
	DB *dbutil.Database
	// Metrics is nil (a no-op) unless network.metrics.enabled.
	Metrics *metrics.Metrics

	// intake makes Matrix events durable before they are acknowledged
	// (intake.go); nil when bridgev2's appservice is not in use.
	intake *intake

	// poller reads the Matrix users' presence for every login that
	// follows it (presencepoll.go), made at the first login.
	pollerOnce sync.Once
	poller     *presencePoller

	// marks: the sending marks of each account (sendingmarks.go).
	marks sync.Map
	// sessionsCounted: when the OMEMO sessions were last counted;
	// sessionsCountDue: a count is running or waits (metrics.go).
	sessionsCounted  atomic.Int64
	sessionsCountDue atomic.Bool

	// keys is the daily OMEMO key maintenance of every login, on one
	// timer (omemo.go).
	keys xmppclient.KeyMaintenance

	// heap returns a wave of logins' free heap to the OS once it settled
	// (heaprelease.go), made at the first connect.
	heapOnce sync.Once
	heap     *heapRelease
}

var (
	_ bridgev2.NetworkConnector            = (*Connector)(nil)
	_ bridgev2.ConfigValidatingNetwork     = (*Connector)(nil)
	_ bridgev2.IdentifierValidatingNetwork = (*Connector)(nil)
	_ bridgev2.StoppableNetwork            = (*Connector)(nil)
)

// Init implements bridgev2.NetworkConnector.
func (xc *Connector) Init(br *bridgev2.Bridge) {
	xc.Bridge = br
	installTxnTransport(br)
	xc.DB = migrations.Child(br.DB.Database, dbutil.ZeroLogger(br.Log.With().Str("db_section", "xmpp").Logger()))
	xc.setupIntake(br)
	if proc, ok := br.Commands.(*commands.Processor); ok {
		proc.AddHandlers(xc.commandHandlers()...)
	}
	installEncryptGuard(br)
	installSyncPacer(br)
}

// Start implements bridgev2.NetworkConnector.
func (xc *Connector) Start(ctx context.Context) error {
	if err := xc.DB.Upgrade(ctx); err != nil {
		return bridgev2.DBUpgradeError{Err: err, Section: "xmpp"}
	}
	m, err := metrics.New(xc.Config.Metrics)
	if err != nil {
		return err
	}
	xc.Metrics = m
	if xc.intake != nil {
		// Replays what the last run stored but did not finish; events wait
		// in HandleMatrix* until their login is ready (ready.go).
		if err := xc.intake.start(xc.Bridge.BackgroundCtx); err != nil {
			return err
		}
	}
	return xc.Metrics.Start(ctx)
}

// Stop implements bridgev2.StoppableNetwork.
func (xc *Connector) Stop() {
	// BackgroundCtx is being cancelled as the bridge stops; the metrics
	// server still gets its 5 s to close, with the bridge's logger.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(xc.backgroundCtx()), 5*time.Second)
	defer cancel()
	_ = xc.Metrics.Stop(ctx)
}

// GetName implements bridgev2.NetworkConnector.
func (xc *Connector) GetName() bridgev2.BridgeName {
	return bridgev2.BridgeName{
		// Read in bridgev2's texts: "Hello, I'm a Jabber/XMPP bridge bot", "Jabber/XMPP
		// bridge management room", the bot device "Jabber/XMPP bridge".
		DisplayName:          "Jabber/XMPP",
		NetworkURL:           "https://xmpp.org",
		NetworkID:            "xmpp",
		BeeperBridgeType:     "github.com/mxomemo/xmpp-bridge",
		DefaultPort:          29320,
		DefaultCommandPrefix: "!xmpp",
	}
}

// GetBridgeInfoVersion implements bridgev2.NetworkConnector.
func (xc *Connector) GetBridgeInfoVersion() (info, capabilities int) {
	return 1, 1
}

// ValidateUserID implements bridgev2.IdentifierValidatingNetwork.
func (xc *Connector) ValidateUserID(id networkid.UserID) bool {
	return puppet.ValidUserID(id)
}

// LoadUserLogin implements bridgev2.NetworkConnector. It must not connect:
// bridgev2 calls Connect later.
func (xc *Connector) LoadUserLogin(ctx context.Context, login *bridgev2.UserLogin) error {
	c := newClient(xc, login)
	c.unsealPassword(ctx)
	login.Client = c
	return nil
}

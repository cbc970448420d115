package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// transactionPattern is the appservice API route the intake takes over.
const transactionPattern = "PUT /_matrix/app/v1/transactions/{txnID}"

// setupIntake puts the intake in front of bridgev2's appservice. It runs in
// Init, after the Matrix connector made its appservice and before it starts
// listening, so the listener serves our router. Other routes (provisioning,
// media, health) still reach bridgev2's router.
func (xc *Connector) setupIntake(br *bridgev2.Bridge) {
	mc, ok := br.Matrix.(*matrix.Connector)
	if !ok || mc.AS == nil || mc.EventProcessor == nil {
		br.Log.Warn().Msg("Matrix connector is not bridgev2's appservice: Matrix events are not made durable")
		return
	}
	if mc.Config != nil && (mc.Config.Homeserver.Websocket || mc.Config.Homeserver.WSProxy != "") {
		br.Log.Warn().Msg("Appservice websocket mode: Matrix events are not made durable before they are acknowledged")
		return
	}
	in := newIntake(xc.DB, br.Log.With().Str("component", "matrix_intake").Logger())
	in.handlerLog = br.Log
	in.checkToken = mc.AS.CheckServerToken
	inner := mc.AS.Router
	in.forward = inner
	bot := mc.AS.BotMXID()
	in.ownSender = func(u id.UserID) bool { return u == bot || br.IsGhostMXID(u) }
	in.forwardOwn = mc.Config != nil && mc.Config.Homeserver.MessageSendCheckpointEndpoint != ""
	in.stored = func(ctx context.Context, evts []intakeEvent) {
		updateStateStore(ctx, mc.AS, evts)
	}
	in.deliver = func(ctx context.Context, evt *event.Event) error {
		return deliverToBridge(ctx, br, mc, evt)
	}
	in.dispatch = func(ctx context.Context, evt *event.Event) error {
		prepareEvent(ctx, mc.AS, evt)
		mc.EventProcessor.Dispatch(ctx, evt)
		return nil
	}
	in.barrier = func(ctx context.Context, evt *event.Event) error {
		return portalBarrier(ctx, br, evt)
	}
	in.precheck = func(ctx context.Context, room id.RoomID, since time.Time) {
		precheckReplay(ctx, br, room, since)
	}
	in.handled = func(ctx context.Context, evt id.EventID) bool {
		msg, err := br.DB.Message.GetPartByMXID(ctx, evt)
		if err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to look up a replayed Matrix event")
			return false
		}
		return msg != nil
	}
	// The intake waits for bridgev2's handlers to return before it takes the
	// next event of a room; with asynchronous transactions they would not
	// even be started in order.
	if mc.EventProcessor.ExecMode != appservice.Sync {
		br.Log.Info().Msg("Handling Matrix events in order (appservice.async_transactions is ignored)")
		mc.EventProcessor.ExecMode = appservice.Sync
	}
	// Without the warning time and the timeout the handlers run on the
	// dispatching goroutine (a room's drain) instead of a goroutine and a
	// timer of their own per event, whose stack grew anew through
	// bridgev2's handlers for every message. With the timeout, a dispatch
	// stopped waiting for a handler stuck for 15 minutes: a drain then
	// marked the event done unhandled, and the appservice's own loops
	// (to-device, ephemeral) went on past a leaked goroutine. Now both
	// wait for the handler.
	mc.EventProcessor.ExecSyncWarnTime, mc.EventProcessor.ExecSyncTimeout = 0, 0
	if br.Config != nil && br.Config.AsyncEvents {
		br.Log.Warn().Msg("bridge.async_events is on: Matrix events of a room may be handled out of order")
	}
	mux := http.NewServeMux()
	mux.Handle(transactionPattern, in)
	mux.Handle("/", inner)
	mc.AS.Router = mux
	xc.intake = in
}

// deliverToBridge hands one stored event to bridgev2 exactly as the
// appservice would have, then waits until the room's portal has handled it.
func deliverToBridge(ctx context.Context, br *bridgev2.Bridge, mc *matrix.Connector, evt *event.Event) error {
	prepareEvent(ctx, mc.AS, evt)
	// Sync mode: returns once bridgev2's handlers returned, which for a
	// portal room means the event is in the portal's queue.
	mc.EventProcessor.Dispatch(ctx, evt)
	return portalBarrier(ctx, br, evt)
}

// prepareEvent does what the appservice does to a timeline event between
// the transaction and its handlers (the state store was updated on
// receipt, see updateStateStore).
func prepareEvent(ctx context.Context, as *appservice.AppService, evt *event.Event) {
	evt.Mautrix.ReceivedAt = time.Now()
	if evt.StateKey != nil {
		evt.Mautrix.EventSource = event.SourceTimeline & event.SourceJoin
		evt.Type.Class = event.StateEventType
	} else {
		evt.Mautrix.EventSource = event.SourceTimeline
		evt.Type.Class = event.MessageEventType
	}
	if err := evt.Content.ParseRaw(evt.Type); err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Str("event_type", evt.Type.Type).Msg("Content of stored event not parsed")
	}
}

// updateStateStore applies the state events of a transaction to the
// appservice's state store on receipt, in order, as the appservice does;
// the drain does not apply them again (it would put older state back over
// newer).
func updateStateStore(ctx context.Context, as *appservice.AppService, evts []intakeEvent) {
	for _, e := range evts {
		if !e.state {
			// Read only for its state key before: a parse per message.
			continue
		}
		var evt event.Event
		if err := json.Unmarshal(e.JSON, &evt); err != nil || evt.StateKey == nil {
			continue
		}
		prepareEvent(ctx, as, &evt)
		mautrix.UpdateStateStore(ctx, as.StateStore, &evt)
	}
}

// portalBarrier returns once the portal of evt's room has handled
// everything queued before this call. It queues a no-op remote event
// behind the Matrix event: a portal handles its queue in order, so when
// the no-op's post-handler runs, the Matrix event is done.
func portalBarrier(ctx context.Context, br *bridgev2.Bridge, evt *event.Event) error {
	if !needsBarrier(br, evt) {
		return nil
	}
	portal, err := br.GetPortalByMXID(ctx, evt.RoomID)
	if err != nil {
		return fmt.Errorf("failed to get portal of %s: %w", evt.RoomID, err)
	}
	if portal == nil {
		// Not a portal: bridgev2 handled it (commands, invites) already.
		return nil
	}
	login := barrierLogin(ctx, br, portal, evt.Sender)
	if login == nil {
		// Nobody to send it as: bridgev2 answered it with "not logged in"
		// without queueing anything.
		return nil
	}
	b := &intakeBarrier{key: portal.PortalKey, done: make(chan struct{})}
	res := br.QueueRemoteEvent(login, b)
	if !res.Queued {
		// Handled in place (portal_event_buffer: 0) or dropped with the
		// portal: nothing left to wait for.
		return nil
	}
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// needsBarrier reports whether evt gets a barrier. Not the events of the
// bot and the ghosts: bridgev2's Matrix connector ignores them (but
// tombstones), so nothing was queued to wait for. Not the user's own leave
// (or rejected invite) either: queueing a remote event marks the login as
// in the portal (bridgev2's UserLogin.MarkInPortal), and once the leave is
// handled that invites the user back into the room just left. Such a leave
// is done when it is in the portal's queue: a crash before it is handled
// loses its XMPP side (a decline, which XMPP does not require, or leaving
// the room, which the user can do again with `leave`).
func needsBarrier(br *bridgev2.Bridge, evt *event.Event) bool {
	if (evt.Sender == br.Bot.GetMXID() || br.IsGhostMXID(evt.Sender)) && evt.Type != event.StateTombstone {
		return false
	}
	if evt.Type == event.StateMember && evt.GetStateKey() == evt.Sender.String() {
		switch evt.Content.AsMember().Membership {
		case event.MembershipLeave, event.MembershipBan:
			return false
		}
	}
	return true
}

// barrierLogin is the login to queue the barrier as: the portal's receiver
// (1:1 chats), else the sender's own login (group chats).
func barrierLogin(ctx context.Context, br *bridgev2.Bridge, portal *bridgev2.Portal, sender id.UserID) *bridgev2.UserLogin {
	if portal.Receiver != "" {
		if login, err := br.GetExistingUserLoginByID(ctx, portal.Receiver); err == nil && login != nil {
			return login
		}
	}
	if user, err := br.GetExistingUserByMXID(ctx, sender); err == nil && user != nil {
		return user.GetDefaultLogin()
	}
	return nil
}

// intakeBarrier is a remote event that does nothing but say it was reached.
type intakeBarrier struct {
	key  networkid.PortalKey
	done chan struct{}
}

var _ bridgev2.RemotePostHandler = (*intakeBarrier)(nil)

func (b *intakeBarrier) GetType() bridgev2.RemoteEventType            { return bridgev2.RemoteEventUnknown }
func (b *intakeBarrier) GetPortalKey() networkid.PortalKey            { return b.key }
func (b *intakeBarrier) GetSender() bridgev2.EventSender              { return bridgev2.EventSender{} }
func (b *intakeBarrier) PostHandle(context.Context, *bridgev2.Portal) { close(b.done) }
func (b *intakeBarrier) AddLogContext(c zerolog.Context) zerolog.Context {
	return c.Bool("matrix_intake_barrier", true)
}

package bridge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"go.mau.fi/util/exhttp"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// intake makes the Matrix → XMPP direction crash-safe. bridgev2's
// appservice answers a transaction as soon as its events sit in memory, and
// the homeserver never sends an answered transaction again, so a crash lost
// whatever was still queued. The intake takes the transaction endpoint
// over: the timeline events are written to matrix_intake (deduplicated by
// event ID) before the 200, then handed to bridgev2 one at a time per room,
// in order, and marked done only once bridgev2 has handled them. Undone
// rows are replayed on start, before anything new in their room.
//
// The steps of one event: stored → answered → drained (given to bridgev2)
// → sending → sent (our handler, around the XMPP send, see sendOnce) →
// handled (bridgev2 stored its message row) → done.
type intake struct {
	store intakeStore
	log   zerolog.Logger
	// handlerLog is the base logger of the context events are handed to
	// bridgev2 with, so its logs do not look like the intake's own.
	handlerLog zerolog.Logger

	// checkToken answers and returns false for a request not from our
	// homeserver.
	checkToken func(w http.ResponseWriter, r *http.Request) bool
	// forward gets a transaction without its timeline events, for the
	// appservice's own handling of ephemeral and to-device events.
	forward http.Handler
	// ownSender says whether a user is the bridge's bot or one of its
	// ghosts. Their non-state timeline events (the bridge's own messages,
	// echoed back by the homeserver) are not stored: bridgev2 ignores them,
	// so there is nothing to keep across a crash, and storing and draining
	// them cost a write and a round through the queue per bridged message.
	// Nor do they go to the appservice's handler, unless forwardOwn: there
	// they only cost a second parse, a goroutine and a timer per bridged
	// message (the appservice's dispatch) for bridgev2 to drop them. State
	// events stay in order with the rest (room state is applied from them).
	ownSender func(id.UserID) bool
	// forwardOwn gives the appservice the own messages all the same:
	// bridgev2 reports a checkpoint for every message event it receives
	// when a checkpoint endpoint is configured.
	forwardOwn bool
	// deliver hands one event to bridgev2 and returns once bridgev2 has
	// handled it (its handlers returned, or it failed with a notice). An
	// error means it could not be handed over (shutting down): the row
	// stays and is replayed on the next start.
	deliver func(ctx context.Context, evt *event.Event) error
	// dispatch and barrier are deliver in two halves, for a run of
	// messages (intake_run.go): dispatch hands one over without waiting,
	// barrier waits until bridgev2 handled it and all before it. Without
	// them, events are handed over one at a time.
	dispatch func(ctx context.Context, evt *event.Event) error
	barrier  func(ctx context.Context, evt *event.Event) error
	// handled says whether bridgev2 already stored a message for the event
	// (a replay after a crash between its database write and ours).
	handled func(ctx context.Context, evt id.EventID) bool
	// precheck runs before a replayed row left "sending" or "sent" is
	// handed over, outside bridgev2's portal loop: it reads what the
	// handler's archive check will ask (mucarchivescan.go), so that the
	// handler does not wait for archive results that the session reads
	// behind stanzas queued for the very portal the handler holds.
	precheck func(ctx context.Context, room id.RoomID, since time.Time)
	// stored runs after the events of a transaction are committed and
	// before the answer, as the appservice updates its state store on
	// receipt: bridgev2 reads room state (membership, encryption) from it
	// while it handles earlier events, which must not wait for the drain.
	stored func(ctx context.Context, evts []intakeEvent)

	// crash is a test hook: a non-nil error returned at a named step stops
	// the intake there, as if the process died.
	crash func(step string) error

	// idle is how long a drain with nothing left stays (drainIdle).
	idle time.Duration

	ctx     context.Context
	mu      sync.Mutex // orders seq with commits and guards workers
	seq     int64
	started bool
	workers map[id.RoomID]chan struct{}
	wg      sync.WaitGroup

	// acks carries the server's acknowledgement of a sent event's stanza
	// from the send to the row's end (intake_ack.go): xmppID →
	// ackWaiter while sendOnce sends, then event ID → ackWaiter until
	// handle marks the row done.
	acks sync.Map
	// acked is, per room, closed when the room's last row waiting for
	// its acknowledgement is done (they are marked done in order).
	acked map[id.RoomID]chan struct{}
	// ackWaiting are, per room, the done channels of the rows waiting
	// for their acknowledgement, oldest first (at most ackWindow).
	ackWaiting map[id.RoomID][]chan struct{}
	// ackQueue are, per room, the rows waiting for their acknowledgement
	// and not yet done, oldest first (intake_ack.go).
	ackQueue map[id.RoomID][]*ackEntry
	// handed is, per room, the seq of the last row handed to bridgev2 in
	// this process.
	handed map[id.RoomID]int64
	// fresh are, per room, the rows stored since its drain read all of
	// the room's rows (synced: the highest seq it read), for the drain;
	// lastSeq is each room's newest stored row (intake_fresh.go).
	fresh   map[id.RoomID][]*intakeRow
	synced  map[id.RoomID]int64
	lastSeq map[id.RoomID]int64
	// handing are the fresh rows being handed to bridgev2: their state is
	// "stored", sendOnce need not read it.
	handing sync.Map
}

func newIntake(db *dbutil.Database, log zerolog.Logger) *intake {
	return &intake{store: intakeStore{db: db}, log: log, handlerLog: log, workers: map[id.RoomID]chan struct{}{}, idle: drainIdle}
}

// start replays the rows left by the previous run and lets new ones drain.
// Transactions received before start are stored and answered but wait.
func (in *intake) start(ctx context.Context) error {
	if err := in.store.prune(ctx); err != nil {
		in.log.Warn().Err(err).Msg("Failed to prune the Matrix intake")
	}
	rooms, err := in.store.pendingRooms(ctx)
	if err != nil {
		return err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.ctx = ctx
	in.started = true
	if len(rooms) > 0 {
		in.log.Info().Int("rooms", len(rooms)).Msg("Replaying Matrix events stored before the last stop")
	}
	for _, room := range rooms {
		in.wakeLocked(room)
	}
	return nil
}

// wait blocks until all room workers have stopped (after ctx ends).
func (in *intake) wait() { in.wg.Wait() }

// ServeHTTP handles PUT /_matrix/app/v1/transactions/{txnID}.
func (in *intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if in.checkToken != nil && !in.checkToken(w, r) {
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil || len(body) == 0 {
		mautrix.MNotJSON.WithMessage("Failed to read request body").Write(w)
		return
	}
	log := in.log.With().Str("transaction_id", r.PathValue("txnID")).Logger()
	var txn map[string]json.RawMessage
	if err := json.Unmarshal(body, &txn); err != nil {
		mautrix.MBadJSON.WithMessage("Failed to parse transaction content").Write(w)
		return
	}
	var raw []json.RawMessage
	if js, ok := txn["events"]; ok {
		if err := json.Unmarshal(js, &raw); err != nil {
			mautrix.MBadJSON.WithMessage("Failed to parse transaction events").Write(w)
			return
		}
	}
	evts := make([]intakeEvent, 0, len(raw))
	var rest []json.RawMessage
	for _, js := range raw {
		var head struct {
			ID       id.EventID      `json:"event_id"`
			RoomID   id.RoomID       `json:"room_id"`
			Sender   id.UserID       `json:"sender"`
			Type     string          `json:"type"`
			StateKey json.RawMessage `json:"state_key"`
		}
		if err := json.Unmarshal(js, &head); err != nil || head.ID == "" || head.RoomID == "" {
			// Not something that can be bridged or deduplicated; the
			// appservice's own handler sees it.
			log.Warn().Err(err).Msg("Transaction event without event or room ID, not stored")
			rest = append(rest, js)
			continue
		}
		if head.StateKey == nil && in.ownSender != nil && in.ownSender(head.Sender) {
			if in.forwardOwn {
				rest = append(rest, js)
			}
			continue
		}
		evts = append(evts, intakeEvent{EventID: head.ID, RoomID: head.RoomID, JSON: js, state: head.StateKey != nil,
			sends: head.StateKey == nil && sendsToXMPP(head.Type)})
	}
	if err := in.accept(r.Context(), evts); err != nil {
		// No 200: the homeserver sends the transaction again.
		log.Err(err).Msg("Failed to store Matrix events, not answering the transaction")
		mautrix.MUnknown.WithMessage("Failed to store events").Write(w)
		return
	}
	if in.stored != nil {
		in.stored(log.WithContext(r.Context()), evts)
	}
	delete(txn, "events")
	if len(rest) > 0 {
		txn["events"], _ = json.Marshal(rest)
	}
	if len(txn) > 0 && in.forward != nil {
		in.forwardRest(r, txn)
	}
	exhttp.WriteEmptyJSONResponse(w, http.StatusOK)
	log.Debug().Int("events", len(evts)).Msg("Stored Matrix events of the transaction")
}

// accept stores the events and wakes their rooms' workers.
func (in *intake) accept(ctx context.Context, evts []intakeEvent) error {
	if len(evts) == 0 {
		return nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.seq == 0 {
		seq, err := in.store.maxSeq(ctx)
		if err != nil {
			return err
		}
		in.seq = seq
	}
	rows, err := in.store.insert(ctx, evts, func() int64 { in.seq++; return in.seq }, in.sendingAtOnceLocked(evts))
	if err != nil {
		return err
	}
	if err := in.step("stored"); err != nil {
		return err
	}
	in.keepFreshLocked(rows)
	if in.started {
		for i, row := range rows {
			if i == 0 || row.RoomID != rows[i-1].RoomID {
				in.wakeLocked(row.RoomID)
			}
		}
	}
	return nil
}

// forwardRest gives the appservice the parts of the transaction that are
// not timeline events (ephemeral, to-device, device lists); they carry
// nothing that must survive a crash.
func (in *intake) forwardRest(r *http.Request, txn map[string]json.RawMessage) {
	body, err := json.Marshal(txn)
	if err != nil {
		return
	}
	fw := r.Clone(r.Context())
	fw.Body = io.NopCloser(bytes.NewReader(body))
	fw.ContentLength = int64(len(body))
	in.forward.ServeHTTP(discardResponse{header: http.Header{}}, fw)
}

type discardResponse struct{ header http.Header }

func (d discardResponse) Header() http.Header         { return d.header }
func (d discardResponse) Write(b []byte) (int, error) { return len(b), nil }
func (d discardResponse) WriteHeader(int)             {}

// wakeLocked makes sure a worker drains room. in.mu is held.
func (in *intake) wakeLocked(room id.RoomID) {
	if ch, ok := in.workers[room]; ok {
		select {
		case ch <- struct{}{}:
		default:
		}
		return
	}
	ch := make(chan struct{}, 1)
	in.workers[room] = ch
	in.wg.Add(1)
	go in.drain(room, ch)
}

// intakeBatch is how many of a room's waiting events the drain reads at
// once (one query per event before: a burst paid a query per message).
const intakeBatch = 32

// drain hands the room's stored events to bridgev2 one at a time, oldest
// first, until none is left.
func (in *intake) drain(room id.RoomID, wake chan struct{}) {
	defer in.wg.Done()
	log := in.log.With().Stringer("room_id", room).Logger()
	ctx := in.handlerLog.With().Stringer("room_id", room).Logger().WithContext(in.ctx)
	retry := time.Second
	// after: the rows handed over in this process; those still waiting
	// for the server's acknowledgement are not done yet (intake_ack.go)
	// and are not handed over again.
	in.mu.Lock()
	after := in.handed[room]
	in.mu.Unlock()
	// run: messages handed over, not yet waited for (intake_run.go).
	var run []handedRow
	var linger *time.Timer
	defer func() {
		if linger != nil {
			linger.Stop()
		}
	}()
	for {
		rows, fromMemory := in.takeFresh(room, after, intakeBatch)
		var err error
		if !fromMemory {
			before := in.roomSeq(room)
			rows, err = in.store.pending(ctx, room, after, intakeBatch)
			if err == nil && len(rows) < intakeBatch {
				readUpTo := after
				if len(rows) > 0 {
					readUpTo = rows[len(rows)-1].Seq
				}
				in.markSynced(room, before, readUpTo)
			}
		}
		for i, row := range rows {
			if in.runnable(row) && row.State == intakeStored {
				if err = in.markRunSending(ctx, rows[i:]); err != nil {
					break
				}
			}
			if in.runnable(row) {
				var h *handedRow
				if h, err = in.dispatchRow(ctx, row); err == nil && h != nil {
					if run = append(run, *h); len(run) == handRun {
						err, run = in.finishRun(run), nil
					}
				}
			} else if err, run = in.finishRun(run), nil; err == nil {
				err = in.handle(ctx, row)
			}
			if err != nil {
				break
			}
			after = row.Seq
			in.mu.Lock()
			if in.handed == nil {
				in.handed = map[id.RoomID]int64{}
			}
			in.handed[room] = after
			in.mu.Unlock()
		}
		if err != nil {
			in.forgetHanded(run)
			run = nil
			in.unsync(room)
			if ctx.Err() != nil || errors.Is(err, errIntakeCrash) {
				in.forget(room)
				return
			}
			log.Err(err).Dur("retry_in", retry).Msg("Failed to drain the Matrix intake, retrying")
			select {
			case <-ctx.Done():
				in.forget(room)
				return
			case <-time.After(retry):
			}
			retry = min(2*retry, time.Minute)
			continue
		}
		retry = time.Second
		if len(rows) > 0 {
			continue
		}
		if len(run) > 0 {
			// Another message may come before the portal is waited for.
			if lingerFor(ctx, &linger, runLinger, wake) {
				continue
			}
			if err, run = in.finishRun(run), nil; err != nil {
				if ctx.Err() != nil || errors.Is(err, errIntakeCrash) {
					in.forget(room)
					return
				}
				log.Err(err).Msg("Failed to mark handed Matrix events done")
			}
			continue
		}
		// Nothing left: stay a while for the room's next event before
		// exiting (drainIdle).
		if lingerFor(ctx, &linger, in.idle, wake) {
			continue
		}
		in.mu.Lock()
		select {
		case <-wake:
			in.mu.Unlock()
			continue
		default:
		}
		delete(in.workers, room)
		in.mu.Unlock()
		return
	}
}

// lingerFor waits up to d (on the drain's one timer, made on first use) for
// the room's next event and reports whether it came.
func lingerFor(ctx context.Context, t **time.Timer, d time.Duration, wake <-chan struct{}) bool {
	if *t == nil {
		*t = time.NewTimer(d)
	} else {
		(*t).Reset(d)
	}
	select {
	case <-wake:
		(*t).Stop()
		return true
	case <-(*t).C:
	case <-ctx.Done():
	}
	return false
}

func (in *intake) forget(room id.RoomID) {
	in.mu.Lock()
	delete(in.workers, room)
	in.mu.Unlock()
}

// handle hands one row to bridgev2 and marks it done.
func (in *intake) handle(ctx context.Context, row *intakeRow) error {
	ctx = zerolog.Ctx(ctx).With().Stringer("event_id", row.EventID).Logger().WithContext(ctx)
	log := in.log.With().Stringer("room_id", row.RoomID).Stringer("event_id", row.EventID).Int64("intake_seq", row.Seq).Logger()
	if row.State > intakeStored {
		log.Info().Int("state", row.State).Msg("Replaying a Matrix event interrupted while it was being sent")
	}
	// A row left "sending" or "sent" was perhaps written but not
	// acknowledged by the XMPP server (intake_ack.go): bridgev2's message
	// row (stored as the handler returns, for a 1:1 chat) does not say the
	// server has it, so it goes through sendOnce's archive check. A fresh
	// row (intake_fresh.go) was never handed over.
	if row.State == intakeStored && !row.fresh && in.handled != nil && in.handled(ctx, row.EventID) {
		log.Debug().Msg("Matrix event already bridged, not handing it over again")
		return in.store.setDone(ctx, row.EventID)
	}
	if row.State >= intakeSending && !row.fresh && in.precheck != nil {
		if _, since, err := in.store.state(ctx, row.EventID); err == nil {
			in.precheck(ctx, row.RoomID, since)
		}
	}
	var evt event.Event
	if err := json.Unmarshal(row.JSON, &evt); err != nil {
		// It parsed as JSON when stored; nothing will make it deliverable.
		log.Err(err).Msg("Stored Matrix event cannot be read, dropping it")
		return in.store.setDone(ctx, row.EventID)
	}
	if row.fresh {
		// sendOnce knows its state without reading it back.
		in.handing.Store(row.EventID, row.State)
	}
	err := in.deliver(ctx, &evt)
	in.handing.Delete(row.EventID)
	if err != nil {
		in.acks.Delete(row.EventID)
		return err
	}
	if err := in.step("handled"); err != nil {
		return err
	}
	if in.doneWhenAcked(ctx, row) {
		return nil
	}
	return in.store.setDone(ctx, row.EventID)
}

// errIntakeCrash is what the crash test hook returns.
var errIntakeCrash = errors.New("intake: simulated crash")

func (in *intake) step(name string) error {
	if in.crash == nil {
		return nil
	}
	return in.crash(name)
}

// intakeXMPPID is the XMPP message id (and origin-id) of the stanza sent for
// a Matrix event. It is derived from the event ID, so a stanza sent again
// after a crash carries the same id and receivers, the archive and our own
// checks see one message.
func intakeXMPPID(evt id.EventID) string {
	sum := sha256.Sum256([]byte(evt))
	return bridgeIDPrefix + hex.EncodeToString(sum[:10])
}

// sendOnce runs send for a Matrix event unless it was already sent before a
// crash. It records "sending" before and "sent" after the send, in the
// event's intake row; alreadySent is true when a replayed event was sent
// in the previous run (the caller then only returns the ID mapping to
// bridgev2). An event in "sending" state was interrupted between the send
// and the record: sentBefore (when given) looks for it in the account's
// archive, and it is sent again, under the same id, only if it is not
// there. Events that did not come through the intake (no row) are simply
// sent.
func (in *intake) sendOnce(ctx context.Context, evt id.EventID, xmppID string, send func() error, sentBefore func(since time.Time) (bool, error)) (alreadySent bool, err error) {
	if in == nil || evt == "" {
		return false, send()
	}
	if v, fresh := in.handing.LoadAndDelete(evt); fresh {
		// Stored by this process and never handed over before: not sent.
		return false, in.sendFresh(ctx, evt, xmppID, v.(int), send, sentBefore)
	}
	state, received, err := in.store.state(ctx, evt)
	if err != nil {
		return false, err
	}
	switch {
	case state < 0:
		return false, send()
	case state >= intakeSent && (state > intakeSent || sentBefore == nil):
		zerolog.Ctx(ctx).Info().Str("xmpp_id", xmppID).Msg("Matrix event was sent to XMPP before a restart, not sending it again")
		return true, nil
	case state >= intakeSending && sentBefore != nil:
		// "sent" is written, not yet known to be the server's: the row
		// is done only once the server acknowledged it (intake_ack.go).
		found, err := sentBefore(received)
		if err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Str("xmpp_id", xmppID).Msg("Could not look for an interrupted send in the archive, sending it again under the same id")
		} else if found {
			zerolog.Ctx(ctx).Info().Str("xmpp_id", xmppID).Msg("Matrix event was sent to XMPP before a crash (found in the archive), not sending it again")
			if err := in.store.setSent(ctx, evt); err != nil {
				return false, err
			}
			return true, nil
		} else {
			zerolog.Ctx(ctx).Info().Str("xmpp_id", xmppID).Msg("Matrix event interrupted before it reached the server, sending it")
		}
	case state == intakeSending:
		zerolog.Ctx(ctx).Warn().Str("xmpp_id", xmppID).Msg("Matrix event may have been sent before a crash, sending it again under the same id")
	}
	if err := in.store.setSending(ctx, evt, xmppID); err != nil {
		return false, err
	}
	return false, in.sendMarked(ctx, evt, xmppID, send, sentBefore)
}

// sendFresh is sendOnce for a row stored by this process and not handed
// over before, in state (stored, or sending when accept marked it so).
func (in *intake) sendFresh(ctx context.Context, evt id.EventID, xmppID string, state int, send func() error, sentBefore func(since time.Time) (bool, error)) error {
	if state < intakeSending {
		if err := in.store.setSending(ctx, evt, xmppID); err != nil {
			return err
		}
	}
	return in.sendMarked(ctx, evt, xmppID, send, sentBefore)
}

// sendMarked sends an event whose row says "sending", and records it.
func (in *intake) sendMarked(ctx context.Context, evt id.EventID, xmppID string, send func() error, sentBefore func(since time.Time) (bool, error)) error {
	if err := in.step("sending"); err != nil {
		return err
	}
	in.expectAck(xmppID)
	if err := send(); err != nil {
		in.acks.Delete(xmppID)
		return err
	}
	in.keepAck(xmppID, evt)
	if err := in.step("sent"); err != nil {
		return err
	}
	// With an archive to look in, "sending" is enough: a replay looks for
	// the stanza in it either way, as it is done only once the server
	// acknowledged it (intake_ack.go). Without one, "sent" keeps a
	// replay from sending it again.
	if sentBefore == nil {
		if err := in.store.setSent(ctx, evt); err != nil {
			// The stanza is out; a replay would send it again under the same id.
			zerolog.Ctx(ctx).Err(err).Msg("Failed to record a sent Matrix event")
		}
	}
	return in.step("recorded")
}

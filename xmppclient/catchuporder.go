package xmppclient

import (
	"context"

	"mellium.im/xmpp/jid"
)

// The catch-up order of one login's stream. Each chat whose archive is
// caught up has a lane: the account's (AccountLane: its 1:1 chats and PEP
// notifications, from the account's archive) and each room's (the room's
// bare JID, from the room's archive). A catch-up of a lane is bracketed in
// the stream by MarkCatchUpStart and MarkCatchUpDone (Event.Lane, Event.Seq);
// between them the lane's live events wait, and they are handed on right
// after the Done mark, behind the catch-up's last page, so that a chat's
// messages reach the handler in archive order. Archive results and the
// events of other lanes pass. A catch-up started while one runs takes its
// place (the waiting events wait for the new one); the Done mark of the
// one it replaced is dropped.

// AccountLane is the lane of the account's archive.
const AccountLane = ""

// CatchUpOrder is the catch-up order of a login's stream; only the
// stream's reader uses it (it has no lock). The zero value is ready.
type CatchUpOrder struct {
	lanes map[string]*catchUpLane
}

type catchUpLane struct {
	running uint64 // the running catch-up's seq, 0 when none
	waiting []Inbound
}

// LaneOf is the lane a live event waits in while that lane catches up; ok
// is false for events that never wait (archive results, presences, IQs).
func LaneOf(in Inbound) (lane string, ok bool) {
	switch in.Kind {
	case KindChat, KindPubSub:
		return AccountLane, true
	case KindGroupchat:
		from, err := jid.Parse(in.From)
		if err != nil {
			return "", false
		}
		return from.Bare().String(), true
	}
	return "", false
}

// Running is the seq of lane's running catch-up, 0 when none.
func (o *CatchUpOrder) Running(lane string) uint64 {
	if l := o.lanes[lane]; l != nil {
		return l.running
	}
	return 0
}

// Step hands ev on to handle in the catch-up order: a start mark at once
// (the lane's live events wait from now on); a done mark only if it ends
// the running catch-up, followed by the events that waited for it; a live
// event now, unless its lane is catching up.
func (o *CatchUpOrder) Step(ctx context.Context, ev Event, handle func(context.Context, Event)) {
	switch ev.Mark {
	case MarkCatchUpStart:
		o.lane(ev.Lane).running = ev.Seq
		handle(ctx, ev)
		return
	case MarkCatchUpDone:
		l := o.lanes[ev.Lane]
		if l == nil || l.running != ev.Seq {
			return
		}
		waiting := l.waiting
		delete(o.lanes, ev.Lane)
		handle(ctx, ev)
		for _, in := range waiting {
			handle(ctx, Event{In: in})
		}
		return
	}
	if lane, ok := LaneOf(ev.In); ok {
		if l := o.lanes[lane]; l != nil && l.running != 0 {
			l.waiting = append(l.waiting, ev.In)
			return
		}
	}
	handle(ctx, ev)
}

func (o *CatchUpOrder) lane(lane string) *catchUpLane {
	if o.lanes == nil {
		o.lanes = map[string]*catchUpLane{}
	}
	l := o.lanes[lane]
	if l == nil {
		l = &catchUpLane{}
		o.lanes[lane] = l
	}
	return l
}

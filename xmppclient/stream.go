package xmppclient

import (
	"context"
	"sync/atomic"
)

// Mark is a point its owner puts into the stream between the stanzas: the
// start and end of an archive catch-up, whose results must be handled
// before the live messages that arrived meanwhile.
type Mark uint8

const (
	// MarkCatchUpStart: a catch-up of the account's archive starts.
	MarkCatchUpStart Mark = iota + 1
	// MarkCatchUpDone: all of the catch-up's results are before it.
	MarkCatchUpDone
	// MarkRoomCatchUpStart and MarkRoomCatchUpDone are the same for one
	// room's archive.
	MarkRoomCatchUpStart
	MarkRoomCatchUpDone
)

// Event is one entry of the login's ordered stream: a classified stanza,
// or a mark.
type Event struct {
	// In is the stanza (Kind 0 for a mark).
	In Inbound
	// Mark is set for a mark.
	Mark Mark
	// Seq is the catch-up a mark belongs to.
	Seq uint64
	// OK (MarkCatchUpDone, MarkRoomCatchUpDone): the catch-up reached the
	// end of the archive.
	OK bool
	// Room is the room's bare JID, for the room marks.
	Room string
}

// Stream is the login's one ordered stream of events: what the Router
// read, in the order it read it, with the marks in between. One handler
// (the connector's) takes them in order, on a goroutine that runs only while
// events wait (LazyWorker): an idle login holds none. The buffer holds
// pointers, as it is allocated whole for every login.
type Stream struct {
	ch      chan *Event
	worker  LazyWorker
	handler atomic.Pointer[streamHandler]
}

type streamHandler struct {
	ctx    context.Context
	handle func(context.Context, Event)
}

// NewStream is a stream buffering size events.
func NewStream(size int) *Stream {
	return &Stream{ch: make(chan *Event, size)}
}

// Start makes handle the stream's one reader until ctx ends; events put
// before are handled now.
func (s *Stream) Start(ctx context.Context, handle func(context.Context, Event)) {
	s.handler.Store(&streamHandler{ctx: ctx, handle: handle})
	s.kick()
}

// Put appends ev (waiting while the stream is full, until ctx ends).
func (s *Stream) Put(ctx context.Context, ev Event) {
	select {
	case s.ch <- &ev:
	case <-ctx.Done():
		return
	}
	s.kick()
}

func (s *Stream) kick() {
	h := s.handler.Load()
	if h == nil {
		return
	}
	s.worker.Kick(func() {
		for h.ctx.Err() == nil {
			select {
			case ev := <-s.ch:
				h.handle(h.ctx, *ev)
			default:
				return
			}
		}
	}, func() bool { return len(s.ch) > 0 && h.ctx.Err() == nil })
}

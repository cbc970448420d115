package xmppclient

import (
	"context"
	"sync"
	"sync/atomic"
)

// Mark is a point its owner puts into the stream between the stanzas: the
// start and end of an archive catch-up, whose results must be handled
// before the live messages that arrived meanwhile.
type Mark uint8

const (
	// MarkCatchUpStart: a catch-up of a lane's archive starts
	// (catchuporder.go).
	MarkCatchUpStart Mark = iota + 1
	// MarkCatchUpDone: all of the catch-up's results are before it.
	MarkCatchUpDone
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
	// OK (MarkCatchUpDone): the catch-up reached the end of the archive.
	OK bool
	// Lane is the chat whose archive a mark's catch-up reads: AccountLane,
	// or a room's bare JID.
	Lane string
}

// Stream is the login's one ordered stream of events: what the Router
// read, in the order it read it, with the marks in between. One handler
// (the connector's) takes them in order, on a goroutine that runs only while
// events wait (LazyWorker): an idle login holds none. The buffer is a slice
// that is let go whenever the stream is drained, so an idle login holds no
// buffer either (a channel's would be allocated whole for every login).
type Stream struct {
	size    int
	mu      sync.Mutex
	q       []*Event
	space   chan struct{} // closed when the reader takes from a full stream; nil while no Put waits
	worker  LazyWorker
	handler atomic.Pointer[streamHandler]
}

type streamHandler struct {
	ctx    context.Context
	handle func(context.Context, Event)
}

// NewStream is a stream buffering up to size events.
func NewStream(size int) *Stream {
	return &Stream{size: max(size, 1)}
}

// Start makes handle the stream's one reader until ctx ends; events put
// before are handled now.
func (s *Stream) Start(ctx context.Context, handle func(context.Context, Event)) {
	s.handler.Store(&streamHandler{ctx: ctx, handle: handle})
	s.kick()
}

// Put appends ev (waiting while the stream is full, until ctx ends).
func (s *Stream) Put(ctx context.Context, ev Event) {
	for {
		s.mu.Lock()
		if len(s.q) < s.size {
			s.q = append(s.q, &ev)
			s.mu.Unlock()
			break
		}
		if s.space == nil {
			s.space = make(chan struct{})
		}
		wait := s.space
		s.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return
		}
	}
	s.kick()
}

// PutMark appends a mark without waiting, also to a full stream. A
// session's setup puts its catch-up mark while the stream may be full
// behind a portal that waits for that very session to be ready (a Matrix
// message to send): waiting there would hold both forever. Marks are few
// (a handful per catch-up), so the bound still holds for messages.
func (s *Stream) PutMark(ev Event) {
	s.mu.Lock()
	s.q = append(s.q, &ev)
	s.mu.Unlock()
	s.kick()
}

// take removes the oldest event (nil when none waits).
func (s *Stream) take() *Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.q) == 0 {
		return nil
	}
	ev := s.q[0]
	s.q[0] = nil
	s.q = s.q[1:]
	if len(s.q) == 0 {
		s.q = nil
	}
	if s.space != nil {
		close(s.space)
		s.space = nil
	}
	return ev
}

func (s *Stream) pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.q) > 0
}

func (s *Stream) kick() {
	h := s.handler.Load()
	if h == nil {
		return
	}
	s.worker.Kick(func() {
		for h.ctx.Err() == nil {
			ev := s.take()
			if ev == nil {
				return
			}
			h.handle(h.ctx, *ev)
		}
	}, func() bool { return s.pending() && h.ctx.Err() == nil })
}

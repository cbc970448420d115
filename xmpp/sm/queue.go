package sm

import (
	"fmt"
	"time"
)

// Stanza is an outbound stanza as written: its bytes (a complete element,
// namespace declared on it) and what the caller needs to decide about
// sending it again.
type Stanza struct {
	Raw  []byte
	Name string // message, presence or iq
	ID   string
	To   string
	Type string
	// Written is when its last byte was written.
	Written time.Time
}

// queue holds the stanzas written since the last acknowledgement, oldest
// first. acked is the server's h of the oldest one's predecessor: the
// stanza at index i has sequence number acked+i+1.
type queue struct {
	items []Stanza
	acked uint32
	bytes int
}

func (q *queue) push(s Stanza) {
	q.items = append(q.items, s)
	q.bytes += len(s.Raw)
}

// sent is the outbound h of the last stanza written.
func (q *queue) sent() uint32 { return q.acked + uint32(len(q.items)) }

// ack drops the stanzas up to h. An h behind the last acknowledgement or
// beyond what was sent is an error (and changes nothing).
func (q *queue) ack(h uint32) error {
	n := since(q.acked, h)
	if int64(n) > int64(len(q.items)) {
		return fmt.Errorf("sm: server acknowledged %d stanzas, only %d of ours were waiting (h %d, last h %d)", n, len(q.items), h, q.acked)
	}
	for _, s := range q.items[:n] {
		q.bytes -= len(s.Raw)
	}
	// Copy so that the dropped stanzas' bytes can be collected.
	q.items = append([]Stanza(nil), q.items[n:]...)
	q.acked = h
	return nil
}

// reset empties the queue and sets the base of the count.
func (q *queue) reset(h uint32) {
	q.items, q.bytes, q.acked = nil, 0, h
}

// take empties the queue and returns what it held.
func (q *queue) take() []Stanza {
	items := q.items
	q.items, q.bytes = nil, 0
	q.acked += uint32(len(items))
	return items
}

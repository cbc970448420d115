package bridge

import (
	"context"
	"fmt"
	"sync"

	"maunium.net/go/mautrix/bridgev2/networkid"
)

// sendingMarks mirrors one account's rows of delivery_sending, so that the
// check before each conversion (sendingMarked) needs no query: it was one
// SELECT per message from XMPP, almost always answered "no". The mirror is
// right by construction: this process is the only one on its database
// (docs/scaling.md), the rows of earlier runs are read once, every write of
// the table goes through here and updates the mirror only after the
// database took it, and the sweep makes it read the rows again. One mirror
// per account, shared by every Client of it in the process, so that a
// login's old and new Client never disagree.
type sendingMarks struct {
	mu     sync.Mutex
	loaded bool
	ids    map[networkid.MessageID]struct{}
}

// sendingMarksOf returns the account's mirror.
func (xc *Connector) sendingMarksOf(account networkid.UserLoginID) *sendingMarks {
	v, _ := xc.marks.LoadOrStore(account, &sendingMarks{})
	return v.(*sendingMarks)
}

// has reports whether id is marked, reading the account's marks with load
// the first time (and after invalidate).
func (m *sendingMarks) has(ctx context.Context, id networkid.MessageID, load func(context.Context) ([]networkid.MessageID, error)) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.loaded {
		ids, err := load(ctx)
		if err != nil {
			return false, fmt.Errorf("failed to read the sending marks: %w", err)
		}
		m.ids = make(map[networkid.MessageID]struct{}, len(ids))
		for _, v := range ids {
			m.ids[v] = struct{}{}
		}
		m.loaded = true
	}
	_, ok := m.ids[id]
	return ok, nil
}

// added and removed follow a successful write of the table.
func (m *sendingMarks) added(id networkid.MessageID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.loaded {
		m.ids[id] = struct{}{}
	}
}

func (m *sendingMarks) removed(id networkid.MessageID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.ids, id)
}

// invalidate makes the next check read the table again.
func (m *sendingMarks) invalidate() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.loaded, m.ids = false, nil
}

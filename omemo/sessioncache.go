package omemo

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
)

// maxCachedRecords bounds the decoded records a Manager keeps: the devices
// it is actively exchanging messages with. Beyond that an arbitrary entry
// goes; a miss costs one parse.
const maxCachedRecords = 32

// cachedRecord is a session record as last loaded or written, with its
// current session decoded, so a message on an established session neither
// parses nor rebuilds the whole record.
//
// The Store stays the source of truth and is read and written per message
// as before: the cached session is used only when the bytes the Store
// returns equal raw. A write the caller's transaction rolled back, a record
// changed or removed behind the Manager, a restored backup: all differ, miss
// and parse afresh. An entry is invalid from the moment a call loads it
// until that call stored the record, so a failed call (whose session state
// is undefined and whose record is not stored) leaves nothing to reuse.
type cachedRecord struct {
	key   cacheKey
	raw   []byte
	owned bool // raw is our buffer (written by us), not the Store's
	// valid: rec.cur is sessions[0] of raw, decoded, and unchanged since.
	valid bool
	// spare is the buffer the next record is built in; raw stays intact
	// until the new one is stored.
	spare []byte
	rec   record
}

type cacheKey struct {
	v    Version
	addr Address
}

// loadRecord loads the record of addr, reusing the decoded current session
// when the stored bytes are those it was decoded from. The returned entry
// is not reused by another call until storeRecord stored it. A nil record
// from the Store gives an empty record.
func (m *Manager) loadRecord(ctx context.Context, v Version, addr Address) (*cachedRecord, error) {
	key := cacheKey{v, addr}
	// The device of the previous call (a chat's next message) is found
	// without hashing the key.
	e := m.lastRecord
	if e == nil || e.key != key {
		e = m.records[key]
	}
	if e == nil {
		if len(m.records) >= maxCachedRecords {
			for k := range m.records {
				m.forgetRecord(k.v, k.addr)
				break
			}
		}
		if m.records == nil {
			m.records = make(map[cacheKey]*cachedRecord)
		}
		e = &cachedRecord{key: key}
		m.records[key] = e
	}
	m.lastRecord = e
	// Until storeRecord succeeds the entry holds nothing to reuse: this
	// call may change the decoded session and then fail.
	valid := e.valid
	e.valid = false
	if valid {
		if m.matcher != nil {
			same, err := m.matcher.SessionMatches(ctx, v, addr, e.raw)
			if err != nil {
				return nil, &storeError{fmt.Errorf("failed to load session with %s: %w", addr, err)}
			}
			if same {
				return e, nil
			}
			valid = false
		}
	}
	raw, err := m.store.Session(ctx, v, addr)
	if err != nil {
		return nil, &storeError{fmt.Errorf("failed to load session with %s: %w", addr, err)}
	}
	if valid && raw != nil && bytes.Equal(raw, e.raw) {
		return e, nil
	}
	if e.owned && e.spare == nil {
		e.spare = e.raw[:0]
	}
	e.raw, e.owned = raw, false
	if raw == nil {
		e.rec = record{sessions: e.rec.sessions[:0]}
		return e, nil
	}
	if err := e.rec.parse(raw); err != nil {
		return nil, fmt.Errorf("failed to load session with %s: %w", addr, err)
	}
	return e, nil
}

// storeRecord writes e's record and, when that succeeded, keeps it for the
// next call.
func (m *Manager) storeRecord(ctx context.Context, v Version, addr Address, e *cachedRecord) error {
	out := e.rec.appendTo(e.spare[:0])
	if err := m.store.PutSession(ctx, v, addr, out); err != nil {
		return &storeError{fmt.Errorf("failed to store session with %s: %w", addr, err)}
	}
	if e.owned {
		e.spare = e.raw[:0]
	} else {
		e.spare = nil
	}
	e.raw, e.owned = out, true
	// The live session is what was just serialized at liveIdx.
	cur := e.rec.live
	if e.rec.liveIdx != 0 {
		cur = nil
	}
	if err := e.rec.parse(out); err != nil {
		panic(err) // we just built it
	}
	e.rec.cur = cur
	// Without the current session decoded there is nothing to save; the
	// next use parses.
	e.valid = cur != nil
	return nil
}

// forgetRecord drops the cached record of addr.
func (m *Manager) forgetRecord(v Version, addr Address) {
	key := cacheKey{v, addr}
	if m.lastRecord != nil && m.lastRecord.key == key {
		m.lastRecord = nil
	}
	delete(m.records, key)
}

// parse splits b into r's serialized sessions (slices of b), reusing r's
// slice; r.cur and r.live are reset.
func (r *record) parse(b []byte) error {
	r.cur, r.live, r.liveIdx = nil, nil, 0
	r.sessions = r.sessions[:0]
	if len(b) < 2 || b[0] != recordFormat {
		return malformed("session record")
	}
	n := int(b[1])
	b = b[2:]
	for range n {
		if len(b) < 4 {
			return malformed("session record")
		}
		l := binary.BigEndian.Uint32(b)
		b = b[4:]
		if uint64(l) > uint64(len(b)) {
			return malformed("session record")
		}
		r.sessions = append(r.sessions, b[:l:l])
		b = b[l:]
	}
	if len(b) != 0 {
		return malformed("session record")
	}
	return nil
}

// session returns session i decoded. The cached current session is handed
// out once: the caller may change it, so a second call decodes it afresh.
func (r *record) session(i int) (*session, error) {
	if i == 0 && r.cur != nil {
		s := r.cur
		r.cur = nil
		return s, nil
	}
	return unmarshalSession(r.sessions[i])
}

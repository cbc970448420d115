package omemo

import (
	"encoding/binary"
	"slices"
)

// A session record is what the Store keeps per (version, device): the
// current session first, then archived ones (newest first) that are tried
// when the current one cannot decrypt a message. Archived sessions stay
// serialized until needed.

const (
	recordFormat = 1
	maxArchived  = 5
	sessionFixed = 2 + 32*11 + 4*7 + 1 + 2
)

type record struct {
	sessions [][]byte // serialized; [0] is current
	// live is the session at index liveIdx after this call changed it; it
	// is serialized straight into the record's bytes.
	live    *session
	liveIdx int
	// cur, when set, is sessions[0] already decoded (see sessionCache.go).
	cur *session
}

func parseRecord(b []byte) (*record, error) {
	r := &record{}
	if err := r.parse(b); err != nil {
		return nil, err
	}
	return r, nil
}

// set replaces session i with s.
func (r *record) set(i int, s *session) {
	r.sessions[i] = nil
	r.live, r.liveIdx = s, i
}

// push makes s the current session and archives the previous ones.
func (r *record) push(s *session) {
	r.sessions = append(r.sessions, nil)
	copy(r.sessions[1:], r.sessions)
	if len(r.sessions) > maxArchived+1 {
		r.sessions = r.sessions[:maxArchived+1]
	}
	r.set(0, s)
}

func (r *record) bytes() []byte { return r.appendTo(nil) }

// appendTo appends the record to out, growing it once if needed.
func (r *record) appendTo(out []byte) []byte {
	size := 2
	for _, s := range r.sessions {
		size += 4 + len(s)
	}
	if r.live != nil {
		size += r.live.size()
	}
	if cap(out)-len(out) < size {
		out = append(make([]byte, 0, len(out)+size), out...)
	}
	out = append(out, recordFormat, byte(len(r.sessions)))
	for i, s := range r.sessions {
		if r.live != nil && i == r.liveIdx {
			at := len(out)
			out = r.live.appendTo(append(out, 0, 0, 0, 0))
			binary.BigEndian.PutUint32(out[at:], uint32(len(out)-at-4))
			continue
		}
		out = binary.BigEndian.AppendUint32(out, uint32(len(s)))
		out = append(out, s...)
	}
	return out
}

const (
	flInitiator = 1 << iota
	flHasDHr
	flHasSend
	flHasRecv
	flPending
	flHasPK
	flHasPrev
	flAll = flHasPrev<<1 - 1
)

// flag is bit when on, else 0 (branch-free: the flags differ per session).
func flag(on bool, bit byte) byte {
	var b byte
	if on {
		b = 1
	}
	return b * bit
}

func (s *session) size() int { return sessionFixed + 32*len(s.oldDHr) + 68*len(s.skipped) }

func (s *session) marshal() []byte { return s.appendTo(make([]byte, 0, s.size())) }

func (s *session) appendTo(out []byte) []byte {
	fl := flag(s.initiator, flInitiator) | flag(s.hasDHr, flHasDHr) | flag(s.hasSend, flHasSend) |
		flag(s.hasRecv, flHasRecv) | flag(s.pending, flPending) | flag(s.hasPK, flHasPK) | flag(s.hasPrev, flHasPrev)
	// This runs for every message: the whole session is written into room
	// made once, the keys as whole arrays (moves, not copy calls).
	at, size := len(out), s.size()
	out = slices.Grow(out, size)[:at+size]
	b := (*[sessionFixed - 2]byte)(out[at:])
	b[0], b[1] = byte(s.p.version), fl
	*(*[32]byte)(b[2+32*0:]) = s.ourIK
	*(*[32]byte)(b[2+32*1:]) = s.theirIK
	*(*[32]byte)(b[2+32*2:]) = s.root
	*(*[32]byte)(b[2+32*3:]) = s.dhs.priv
	*(*[32]byte)(b[2+32*4:]) = s.dhs.pub
	*(*[32]byte)(b[2+32*5:]) = s.dhr
	*(*[32]byte)(b[2+32*6:]) = s.send.key
	*(*[32]byte)(b[2+32*7:]) = s.recv.key
	*(*[32]byte)(b[2+32*8:]) = s.baseKey
	*(*[32]byte)(b[2+32*9:]) = s.prevDHr
	*(*[32]byte)(b[2+32*10:]) = s.prevRecv.key
	n := b[2+32*11:]
	binary.BigEndian.PutUint32(n[0:], s.send.n)
	binary.BigEndian.PutUint32(n[4:], s.recv.n)
	binary.BigEndian.PutUint32(n[8:], s.pn)
	binary.BigEndian.PutUint32(n[12:], s.pkID)
	binary.BigEndian.PutUint32(n[16:], s.spkID)
	binary.BigEndian.PutUint32(n[20:], s.regID)
	binary.BigEndian.PutUint32(n[24:], s.prevRecv.n)
	n[28] = byte(len(s.oldDHr))
	rest := out[at+sessionFixed-2:]
	for i := range s.oldDHr {
		*(*[32]byte)(rest) = s.oldDHr[i]
		rest = rest[32:]
	}
	binary.BigEndian.PutUint16(rest, uint16(len(s.skipped)))
	rest = rest[2:]
	for i := range s.skipped {
		sk := &s.skipped[i]
		*(*[32]byte)(rest) = sk.dh
		binary.BigEndian.PutUint32(rest[32:], sk.n)
		*(*[32]byte)(rest[36:]) = sk.mk
		rest = rest[68:]
	}
	return out
}

var errBadSession = malformed("session state")

func unmarshalSession(b []byte) (*session, error) {
	bad := errBadSession
	if len(b) < sessionFixed {
		return nil, bad
	}
	v := Version(b[0])
	if !v.Valid() {
		return nil, bad
	}
	s := &session{p: profileFor(v)}
	fl := b[1]
	if fl&^flAll != 0 {
		return nil, bad
	}
	s.initiator, s.hasDHr, s.hasSend = fl&flInitiator != 0, fl&flHasDHr != 0, fl&flHasSend != 0
	s.hasRecv, s.pending, s.hasPK = fl&flHasRecv != 0, fl&flPending != 0, fl&flHasPK != 0
	s.hasPrev = fl&flHasPrev != 0
	b = b[2:]
	for _, k := range []*[32]byte{&s.ourIK, &s.theirIK, &s.root, &s.dhs.priv, &s.dhs.pub, &s.dhr, &s.send.key, &s.recv.key, &s.baseKey, &s.prevDHr, &s.prevRecv.key} {
		copy(k[:], b)
		b = b[32:]
	}
	for _, n := range []*uint32{&s.send.n, &s.recv.n, &s.pn, &s.pkID, &s.spkID, &s.regID, &s.prevRecv.n} {
		*n = binary.BigEndian.Uint32(b)
		b = b[4:]
	}
	nOld := int(b[0])
	b = b[1:]
	if nOld > maxOldChains || len(b) < nOld*32+2 {
		return nil, bad
	}
	if nOld > 0 {
		s.oldDHr = make([][32]byte, nOld)
		for i := range s.oldDHr {
			copy(s.oldDHr[i][:], b)
			b = b[32:]
		}
	}
	nSkip := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if nSkip > maxSkip || len(b) != nSkip*68 {
		return nil, bad
	}
	if nSkip > 0 {
		s.skipped = make([]skippedKey, nSkip)
		for i := range s.skipped {
			sk := &s.skipped[i]
			copy(sk.dh[:], b)
			sk.n = binary.BigEndian.Uint32(b[32:])
			copy(sk.mk[:], b[36:68])
			b = b[68:]
		}
	}
	return s, nil
}

package xmpptap

import (
	"sort"
	"strconv"
	"sync"
)

// nsSM is XEP-0198's namespace.
const nsSM = "urn:xmpp:sm:3"

// ledger translates XEP-0198's counters between the two sides of the tap.
// Both the bridge and the server count the stanzas they send and receive
// after <enable/> (the bridge's outbound, the server's inbound) and after
// <enabled/> (the server's outbound, the bridge's inbound), and acknowledge
// with <a h/> the count received. Through the tap the two ends' counts of one
// direction differ by the stanzas injected or swallowed, and the ledger
// knows where they were:
//   - inbound (server → bridge): the bridge's count includes the injected
//     stanzas. Its h covers the first h stanzas the tap wrote it; the server
//     is told h less the injected ones among them.
//   - outbound (bridge → server): the server's count lacks the swallowed
//     stanzas. The server sends <a h/> only to answer the bridge's <r/>, one
//     each, in order, and its h then covers every stanza before that <r/>;
//     the bridge is told h plus the swallowed ones before the same <r/>
//     (the tap has them: acknowledging them is true). Not a swallowed one
//     after it: the bridge may not have counted a stanza it is still writing
//     when the answer comes (its queue then refuses an h above its count).
//
// The counters wrap at 2^32 as XEP-0198's do; the positions kept are
// compared in that arithmetic only within one ack window, which a burst of
// far fewer than 2^31 stanzas never leaves.
type ledger struct {
	mu sync.Mutex

	written  uint32   // stanzas written to the bridge since <enabled/>
	injected []uint32 // the bridge's count after each injected one, ascending
	injDone  uint32   // injected ones already behind an acknowledgement

	swallowed uint32   // the bridge's stanzas swallowed since <enable/>
	requests  []uint32 // swallowed before each <r/> of the bridge's not answered yet
	answered  uint32   // swallowed before the <r/> last answered

	changed [2]int // acknowledgements whose h was changed: toward the server, toward the bridge
}

// resetIn starts the inbound count (<enabled/> relayed to the bridge).
func (l *ledger) resetIn() {
	l.mu.Lock()
	l.written, l.injected, l.injDone = 0, nil, 0
	l.mu.Unlock()
}

// resetOut starts the outbound count (<enable/> relayed to the server).
func (l *ledger) resetOut() {
	l.mu.Lock()
	l.swallowed, l.requests, l.answered = 0, nil, 0
	l.mu.Unlock()
}

// in counts a stanza written to the bridge; injected says the server did
// not send it.
func (l *ledger) in(injected bool) {
	l.mu.Lock()
	l.written++
	if injected {
		l.injected = append(l.injected, l.written)
	}
	l.mu.Unlock()
}

// swallow counts a stanza of the bridge's that was not forwarded.
func (l *ledger) swallow() {
	l.mu.Lock()
	l.swallowed++
	l.mu.Unlock()
}

// request notes a <r/> of the bridge's forwarded to the server.
func (l *ledger) request() {
	l.mu.Lock()
	l.requests = append(l.requests, l.swallowed)
	l.mu.Unlock()
}

// toServer is the bridge's inbound h as the server counts: less the injected
// stanzas it covers.
func (l *ledger) toServer(h uint32) uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := sort.Search(len(l.injected), func(i int) bool { return int32(l.injected[i]-h) > 0 })
	l.injDone += uint32(n)
	l.injected = l.injected[n:]
	if l.injDone != 0 {
		l.changed[0]++
	}
	return h - l.injDone
}

// toBridge is the server's h (answering the oldest <r/> not answered yet)
// as the bridge counts: plus the swallowed stanzas before that <r/>.
func (l *ledger) toBridge(h uint32) uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.requests) > 0 {
		l.answered = l.requests[0]
		l.requests = l.requests[1:]
	}
	if l.answered != 0 {
		l.changed[1]++
	}
	return h + l.answered
}

// toBridgeAll is the server's h in <resumed/> as the bridge counts: every
// stanza before the stream broke was read, swallowed ones included.
func (l *ledger) toBridgeAll(h uint32) uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests, l.answered = nil, l.swallowed
	if l.answered != 0 {
		l.changed[1]++
	}
	return h + l.answered
}

// smRewrite is a stream management element with its h translated by conv,
// or raw itself when it carries none (or is not one).
func smRewrite(raw []byte, conv func(uint32) uint32) []byte {
	s, e, ok := attrSpan(raw, "h")
	if !ok {
		return raw
	}
	h, err := strconv.ParseUint(string(raw[s:e]), 10, 32)
	if err != nil {
		return raw
	}
	return withAttr(raw, "h", strconv.FormatUint(uint64(conv(uint32(h))), 10))
}

// isStanza reports whether a top-level element is a stanza of a client
// stream (what XEP-0198 counts).
func isStanza(p Piece) bool {
	switch p.Name {
	case "message", "presence", "iq":
	default:
		return false
	}
	ns := Attr(p.Raw, "xmlns")
	return ns == "" || ns == "jabber:client"
}

// smName is the local name of a stream management element, "" for others.
func smName(p Piece) string {
	switch p.Name {
	case "a", "r", "enable", "enabled", "resume", "resumed", "failed":
	default:
		return ""
	}
	if Attr(p.Raw, "xmlns") != nsSM {
		return ""
	}
	return p.Name
}

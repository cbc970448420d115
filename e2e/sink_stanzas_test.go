package e2e

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
)

// The elements the bridge's XMPP session exchanges with the server per bridged message
// (MXOMEMO_SINK_STANZAS=1: Prosody at debug with mod_stanza_debug, which logs each one; the
// CPU figures of such a run are not comparable). Read from Prosody's log: the sessions bound
// to the account with another full JID than skip (the witness's, which the server chose) are
// the bridge's.

// stanzaTally counts the bridge's elements by kind, each way.
type stanzaTally struct {
	out, in map[string]int // bridge → server ("RECV" in the log), server → bridge ("SEND")
}

// tallyStanzas reads the log from offset and counts the bridge's elements (account's sessions
// but the one bound to the full JID skip); it returns the offset read to. bridge keeps the sessions found so far.
func tallyStanzas(tb testing.TB, path string, offset int64, account, skip string, bridge map[string]bool) (stanzaTally, int64) {
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		tb.Fatal(err)
	}
	raw, err := io.ReadAll(f)
	if err != nil {
		tb.Fatal(err)
	}
	t := stanzaTally{out: map[string]int{}, in: map[string]int{}}
	for _, line := range strings.Split(string(raw), "\n") {
		// "Dec 07 21:18:04 c2s560584f40110\tdebug\tRECV: <message …"
		head, rest, ok := strings.Cut(line, "\tdebug\t")
		if !ok {
			continue
		}
		sess := head[strings.LastIndexByte(head, ' ')+1:]
		if full, ok := strings.CutPrefix(rest, "Resource bound: "); ok {
			if strings.HasPrefix(full, account+"/") && full != skip {
				bridge[sess] = true
			}
			continue
		}
		if !bridge[sess] {
			continue
		}
		if el, ok := strings.CutPrefix(rest, "RECV: "); ok {
			t.out[stanzaKind(el)]++
		} else if el, ok := strings.CutPrefix(rest, "SEND: "); ok {
			t.in[stanzaKind(el)]++
		}
	}
	return t, offset + int64(len(raw))
}

// stanzaKind names a top-level element as serialised in the log: stream management, IQs by
// type, presences, and messages by what they carry.
func stanzaKind(el string) string {
	name := el[1:]
	if i := strings.IndexAny(name, " />"); i >= 0 {
		name = name[:i]
	}
	has := func(s string) bool { return strings.Contains(el, s) }
	switch name {
	case "r", "a":
		return "sm-" + name
	case "iq":
		for _, typ := range []string{"get", "set", "result", "error"} {
			if has("type='"+typ+"'") || has(`type="`+typ+`"`) {
				return "iq-" + typ
			}
		}
		return "iq"
	case "message":
		switch {
		case has("type='error'") || has(`type="error"`):
			return "message-error"
		case has("urn:xmpp:carbons:2"):
			return "carbon"
		case has("<body") || has("<encrypted"):
			return "message"
		case has("urn:xmpp:receipts"):
			return "receipt"
		case has("http://jabber.org/protocol/chatstates"):
			return "chat-state"
		case has("urn:xmpp:chat-markers:0"):
			return "marker"
		}
		return "message-other"
	}
	return name
}

// perMessage is the counts per message of n, each way.
func (t stanzaTally) perMessage(n int) string {
	f := func(m map[string]int) string {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(m)) {
			parts = append(parts, fmt.Sprintf("%s %.2f", k, float64(m[k])/float64(max(n, 1))))
		}
		if parts == nil {
			return "-"
		}
		return strings.Join(parts, ", ")
	}
	return "bridge→server: " + f(t.out) + "; server→bridge: " + f(t.in)
}

package xmpptap

import (
	"bytes"
	"html"
)

// Readdress is a stanza as the server would deliver it: raw (one whole
// element with children, as a client wrote it) with its from and to set and
// child (the elements the server adds, such as a XEP-0359 stanza-id;
// already XML) appended after its children. The tap's user builds injected
// stanzas and a room's reflections of swallowed messages with it.
func Readdress(raw []byte, from, to, child string) []byte {
	out := withAttr(withAttr(raw, "from", html.EscapeString(from)), "to", html.EscapeString(to))
	if child == "" {
		return out
	}
	i := bytes.LastIndex(out, []byte("</"))
	if i < 0 {
		return out
	}
	return append(append(append(make([]byte, 0, len(out)+len(child)), out[:i]...), child...), out[i:]...)
}

package xmpptap

import (
	"bytes"
	"html"
)

// startTag is the start tag at the beginning of an element's bytes.
func startTag(raw []byte) []byte {
	var quote byte
	for i, b := range raw {
		switch {
		case quote != 0:
			if b == quote {
				quote = 0
			}
		case b == '"' || b == '\'':
			quote = b
		case b == '>':
			return raw[:i+1]
		}
	}
	return raw
}

// attrSpan finds attribute name in the start tag at the beginning of raw and
// returns the offsets of its value (between the quotes).
func attrSpan(raw []byte, name string) (start, end int, ok bool) {
	tag := startTag(raw)
	i := bytes.IndexAny(tag, " \t\r\n")
	for i >= 0 && i < len(tag) {
		for i < len(tag) && isSpace(tag[i]) {
			i++
		}
		j := i
		for j < len(tag) && tag[j] != '=' && !isSpace(tag[j]) && tag[j] != '/' && tag[j] != '>' {
			j++
		}
		an := tag[i:j]
		for j < len(tag) && isSpace(tag[j]) {
			j++
		}
		if j >= len(tag) || tag[j] != '=' {
			return 0, 0, false
		}
		j++
		for j < len(tag) && isSpace(tag[j]) {
			j++
		}
		if j >= len(tag) || (tag[j] != '"' && tag[j] != '\'') {
			return 0, 0, false
		}
		k := bytes.IndexByte(tag[j+1:], tag[j])
		if k < 0 {
			return 0, 0, false
		}
		if string(an) == name {
			return j + 1, j + 1 + k, true
		}
		i = j + 1 + k + 1
	}
	return 0, 0, false
}

// Attr is the value of attribute name of the element in raw ("" when it
// has none).
func Attr(raw []byte, name string) string {
	s, e, ok := attrSpan(raw, name)
	if !ok {
		return ""
	}
	return html.UnescapeString(string(raw[s:e]))
}

// withAttr is raw with attribute name's value replaced by value (already
// escaped), or added to the start tag when it has none.
func withAttr(raw []byte, name, value string) []byte {
	if s, e, ok := attrSpan(raw, name); ok {
		out := make([]byte, 0, len(raw)-(e-s)+len(value))
		out = append(append(append(out, raw[:s]...), value...), raw[e:]...)
		return out
	}
	i := bytes.IndexAny(raw, " \t\r\n/>")
	if i < 0 {
		return raw
	}
	out := make([]byte, 0, len(raw)+len(name)+len(value)+4)
	out = append(out, raw[:i]...)
	out = append(out, ' ')
	out = append(out, name...)
	out = append(out, '=', '\'')
	out = append(out, value...)
	out = append(out, '\'')
	return append(out, raw[i:]...)
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\r' || b == '\n' }

package xmpptap

import "bytes"

// Piece is a run of stream bytes as the framer cut them: a whole top-level
// element (a stanza, a stream management element, features, SASL), or bytes
// between them (the XML declaration, a stream header, whitespace, the
// stream's end tag), which are relayed as they are.
type Piece struct {
	Raw []byte // valid until the next Feed
	Top bool   // a whole top-level element
	// Name is a top-level element's name as written ("message",
	// "stream:features"); "" for other bytes.
	Name string
}

type frameState uint8

const (
	fText  frameState = iota
	fLt               // after '<'
	fStart            // inside a start tag
	fEnd              // inside an end tag
	fOther            // inside <? … ?> or <! … >
)

// Framer cuts an XMPP stream into Pieces, a byte at a time, across reads.
// It knows only as much XML as a client stream has (XMPP forbids comments,
// processing instructions but the declaration, and DTDs): tags with quoted
// attributes and text. A stream header at the top level (a stream restart
// after SASL) is not an element: the stream restarts inside it.
type Framer struct {
	st    frameState
	depth int  // 0 outside the stream, 1 inside <stream:stream>, 2+ inside a top-level element
	quote byte // the open attribute quote inside a tag, or 0
	prev  byte // the last non-space byte inside a tag (for "/>")
	inTop bool // the bytes since the last '<' at depth 1 belong to a top-level element
	tag   []byte
	elem  []byte // the current top-level element so far
	other []byte // bytes between elements not yet emitted
}

// Feed cuts p and calls emit for every whole piece, in stream order; the
// bytes of an unfinished element wait for the next Feed.
func (f *Framer) Feed(p []byte, emit func(Piece)) {
	for _, b := range p {
		f.byte(b, emit)
	}
	f.flushOther(emit)
}

func (f *Framer) flushOther(emit func(Piece)) {
	if len(f.other) > 0 {
		emit(Piece{Raw: f.other})
		f.other = f.other[:0]
	}
}

func (f *Framer) byte(b byte, emit func(Piece)) {
	if f.inTop {
		f.elem = append(f.elem, b)
	} else if !(f.depth <= 1 && b == '<' && f.st == fText) {
		f.other = append(f.other, b)
	}
	switch f.st {
	case fText:
		if b != '<' {
			return
		}
		f.st = fLt
		f.tag = append(f.tag[:0], b)
		if f.depth == 1 && !f.inTop {
			// Possibly a top-level element: kept apart until its name says.
			f.flushOther(emit)
			f.inTop = true
			f.elem = append(f.elem[:0], b)
		} else if f.depth == 0 {
			f.other = append(f.other, b)
		}
	case fLt:
		f.tag = append(f.tag, b)
		switch b {
		case '/':
			f.st = fEnd
		case '?', '!':
			f.st = fOther
			f.unTop()
		default:
			f.st, f.quote, f.prev = fStart, 0, b
		}
	case fStart:
		f.tag = append(f.tag, b)
		switch {
		case f.quote != 0:
			if b == f.quote {
				f.quote = 0
			}
		case b == '"' || b == '\'':
			f.quote = b
		case b == '>':
			f.st = fText
			f.startTag(f.prev == '/', emit)
			return
		}
		if b != ' ' && b != '\t' && b != '\r' && b != '\n' {
			f.prev = b
		}
	case fEnd:
		f.tag = append(f.tag, b)
		if b == '>' {
			f.st = fText
			f.endTag(emit)
		}
	case fOther:
		if b == '>' {
			f.st = fText
		}
	}
}

// unTop gives the bytes of a '<' at depth 1 that began no element back to
// the bytes between elements.
func (f *Framer) unTop() {
	if f.inTop && f.depth == 1 {
		f.other = append(f.other, f.elem...)
		f.elem = f.elem[:0]
		f.inTop = false
	}
}

func (f *Framer) startTag(empty bool, emit func(Piece)) {
	if f.depth <= 1 && isStreamHeader(f.tag) {
		f.unTop()
		f.depth = 1
		return
	}
	switch f.depth {
	case 0:
		// An element outside any stream, which XMPP does not have: relayed.
	case 1:
		if empty {
			f.finish(emit)
			return
		}
		f.depth = 2
	default:
		if !empty {
			f.depth++
		}
	}
}

func (f *Framer) endTag(emit func(Piece)) {
	switch f.depth {
	case 0:
	case 1:
		// </stream:stream>
		f.unTop()
		f.depth = 0
	case 2:
		f.depth = 1
		f.finish(emit)
	default:
		f.depth--
	}
}

func (f *Framer) finish(emit func(Piece)) {
	f.inTop = false
	emit(Piece{Raw: f.elem, Top: true, Name: tagName(f.elem)})
	f.elem = f.elem[:0]
}

// isStreamHeader reports whether a start tag is <stream:stream …> (any
// prefix bound to the streams namespace is written as "stream" by every
// server and client we relay).
func isStreamHeader(tag []byte) bool {
	return tagName(tag) == "stream:stream"
}

// tagName is the name of the start tag at the beginning of b.
func tagName(b []byte) string {
	if len(b) < 2 || b[0] != '<' {
		return ""
	}
	b = b[1:]
	if i := bytes.IndexAny(b, " \t\r\n/>"); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

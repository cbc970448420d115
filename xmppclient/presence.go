package xmppclient

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// Show is a contact's availability (RFC 6121 §4.7.2.1), with Offline for a
// contact without an available resource.
type Show string

// The values of Show.
const (
	ShowOffline   Show = "offline"
	ShowAvailable Show = ""
	ShowChat      Show = "chat"
	ShowAway      Show = "away"
	ShowXA        Show = "xa"
	ShowDND       Show = "dnd"
)

// rank orders shows for resources of equal priority: the most reachable wins.
func (s Show) rank() int {
	switch s {
	case ShowChat:
		return 5
	case ShowAvailable:
		return 4
	case ShowDND:
		return 3
	case ShowAway:
		return 2
	case ShowXA:
		return 1
	}
	return 0
}

// Presence is what one resource (or, aggregated, one contact) shows.
type Presence struct {
	Show     Show
	Status   string
	Priority int
}

// ParsePresence reads a presence stanza: who sent it, whether it is an
// available or unavailable presence (other types give ok false), and its
// show, status and priority. An unknown show counts as available; a status
// in several languages gives the one without xml:lang, else the first.
func ParsePresence(r xml.TokenReader) (from jid.JID, p Presence, ok bool, err error) {
	tok, err := r.Token()
	if err != nil {
		return jid.JID{}, p, false, fmt.Errorf("xmppclient: failed to read presence: %w", err)
	}
	start, isStart := tok.(xml.StartElement)
	if !isStart || start.Name.Local != "presence" {
		return jid.JID{}, p, false, fmt.Errorf("xmppclient: not a presence: %v", tok)
	}
	sp, err := stanza.NewPresence(start)
	if err != nil {
		return jid.JID{}, p, false, fmt.Errorf("xmppclient: bad presence: %w", err)
	}
	switch sp.Type {
	case stanza.AvailablePresence:
	case stanza.UnavailablePresence:
		p.Show = ShowOffline
	default:
		return sp.From, p, false, nil
	}
	d := xml.NewTokenDecoder(xmlstream.Inner(r))
	statusSet, statusLang := false, true
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		child, isStart := tok.(xml.StartElement)
		if !isStart {
			continue
		}
		if child.Name.Space != stanza.NSClient && child.Name.Space != "" {
			if err := d.Skip(); err != nil {
				break
			}
			continue
		}
		var text string
		if err := d.DecodeElement(&text, &child); err != nil {
			return sp.From, p, false, fmt.Errorf("xmppclient: bad presence child %s: %w", child.Name.Local, err)
		}
		text = strings.TrimSpace(text)
		switch child.Name.Local {
		case "show":
			if p.Show == ShowOffline {
				continue
			}
			switch s := Show(text); s {
			case ShowChat, ShowAway, ShowXA, ShowDND:
				p.Show = s
			}
		case "status":
			lang := hasLang(child)
			if !statusSet || (statusLang && !lang) {
				p.Status, statusSet, statusLang = text, true, lang
			}
		case "priority":
			if n, err := strconv.Atoi(text); err == nil && n >= -128 && n <= 127 {
				p.Priority = n
			}
		}
	}
	return sp.From, p, true, nil
}

func hasLang(start xml.StartElement) bool {
	for _, a := range start.Attr {
		if a.Name.Local == "lang" {
			return true
		}
	}
	return false
}

// Presences aggregates the presence of each contact over its resources:
// the available resource with the highest priority wins (ties: the most
// reachable show, then the latest update), and a contact whose last
// resource went away is offline with that presence's status. It is safe for
// concurrent use.
type Presences struct {
	mu       sync.Mutex
	seq      uint64
	contacts map[string]map[string]resourcePresence
	offline  map[string]string
}

type resourcePresence struct {
	Presence
	seq uint64
}

// NewPresences returns an empty tracker.
func NewPresences() *Presences {
	return &Presences{contacts: map[string]map[string]resourcePresence{}, offline: map[string]string{}}
}

// Update applies a presence of from (a full or bare JID) and returns the
// contact's aggregate presence afterwards.
func (ps *Presences) Update(from jid.JID, p Presence) Presence {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	key, res := from.Bare().String(), from.Resourcepart()
	rs := ps.contacts[key]
	if p.Show == ShowOffline {
		if res == "" {
			// A bare unavailable: every resource is gone.
			rs = nil
		} else {
			delete(rs, res)
		}
		if len(rs) == 0 {
			delete(ps.contacts, key)
			ps.offline[key] = p.Status
			return Presence{Show: ShowOffline, Status: p.Status}
		}
		return aggregate(rs)
	}
	if rs == nil {
		rs = map[string]resourcePresence{}
		ps.contacts[key] = rs
	}
	delete(ps.offline, key)
	ps.seq++
	rs[res] = resourcePresence{Presence: p, seq: ps.seq}
	return aggregate(rs)
}

// Get is the contact's aggregate presence; ok is false when no presence of
// it was seen since the last Reset.
func (ps *Presences) Get(contact jid.JID) (p Presence, ok bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	key := contact.Bare().String()
	if rs, ok := ps.contacts[key]; ok {
		return aggregate(rs), true
	}
	if status, ok := ps.offline[key]; ok {
		return Presence{Show: ShowOffline, Status: status}, true
	}
	return Presence{Show: ShowOffline}, false
}

// Reset forgets everything: a new session gets every contact's presence
// again from the server.
func (ps *Presences) Reset() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.contacts = map[string]map[string]resourcePresence{}
	ps.offline = map[string]string{}
}

func aggregate(rs map[string]resourcePresence) Presence {
	var best resourcePresence
	first := true
	for _, r := range rs {
		switch {
		case first,
			r.Priority > best.Priority,
			r.Priority == best.Priority && r.Show.rank() > best.Show.rank(),
			r.Priority == best.Priority && r.Show.rank() == best.Show.rank() && r.seq > best.seq:
			best, first = r, false
		}
	}
	return Presence{Show: best.Show, Status: best.Status, Priority: best.Priority}
}

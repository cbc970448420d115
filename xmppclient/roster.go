package xmppclient

import (
	"sort"
	"sync"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/roster"
)

// Roster is the login's roster (contact bare JID -> item) plus which
// resources of each contact are online. It is safe for concurrent use: the
// Serve loop writes it (roster pushes, presences) while portals read it.
type Roster struct {
	mu     sync.RWMutex
	items  map[string]roster.Item
	online map[string]map[string]struct{}
}

// NewRoster returns an empty roster.
func NewRoster() *Roster {
	return &Roster{items: map[string]roster.Item{}, online: map[string]map[string]struct{}{}}
}

// Get returns the item of the contact j (any resource), if on the roster.
func (r *Roster) Get(j jid.JID) (roster.Item, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	item, ok := r.items[j.Bare().String()]
	return item, ok
}

// Set applies one roster push: subscription "remove" drops the contact.
func (r *Roster) Set(item roster.Item) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := item.JID.Bare().String()
	if item.Subscription == "remove" {
		delete(r.items, key)
		return
	}
	r.items[key] = item
}

// Replace sets the whole roster, as fetched after a connect.
func (r *Roster) Replace(items []roster.Item) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.items = make(map[string]roster.Item, len(items))
	for _, item := range items {
		r.items[item.JID.Bare().String()] = item
	}
}

// List returns the items sorted by JID.
func (r *Roster) List() []roster.Item {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]roster.Item, 0, len(r.items))
	for _, item := range r.items {
		out = append(out, item)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].JID.String() < out[j].JID.String() })
	return out
}

// SetOnline records an available (or unavailable) presence of from's
// resource.
func (r *Roster) SetOnline(from jid.JID, available bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := from.Bare().String()
	res := r.online[key]
	if available {
		if res == nil {
			res = map[string]struct{}{}
			r.online[key] = res
		}
		res[from.Resourcepart()] = struct{}{}
	} else if res != nil {
		delete(res, from.Resourcepart())
		if len(res) == 0 {
			delete(r.online, key)
		}
	}
}

// Online reports whether any resource of the contact j is available.
func (r *Roster) Online(j jid.JID) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.online[j.Bare().String()]) > 0
}

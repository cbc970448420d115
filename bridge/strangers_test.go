package bridge

import (
	"context"
	"encoding/xml"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/roster"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

func pepNotification(t *testing.T, from, node, item string) pubsub.Event {
	t.Helper()
	x := fmt.Sprintf(`<message xmlns='jabber:client' from='%s' to='alice@localhost' type='headline'>`+
		`<event xmlns='http://jabber.org/protocol/pubsub#event'><items node='%s'>%s</items></event></message>`, from, node, item)
	st, err := stanzabuf.Read(xml.NewDecoder(strings.NewReader(x)))
	if err != nil {
		t.Fatal(err)
	}
	in := xmppclient.Classify(st)
	if in.Kind != xmppclient.KindPubSub || in.Err != nil {
		t.Fatalf("notification classified as %d (%v)", in.Kind, in.Err)
	}
	return in.Event
}

// TestStrangerFlood: PEP notifications from accounts the login has nothing
// to do with store no device list, start no avatar lookup and create no
// ghost; a roster contact's still count.
func TestStrangerFlood(t *testing.T) {
	f := newInboxFixture(t)
	f.c.mucs, f.c.roster = xmppclient.NewRooms(), xmppclient.NewRoster()
	ctx := context.Background()
	contact := jid.MustParse("carol@localhost")
	f.c.roster.Set(roster.Item{JID: contact, Subscription: "both"})
	goroutines := runtime.NumGoroutine()
	const devList = `<item id='current'><devices xmlns='urn:xmpp:omemo:2'><device id='1'/><device id='2'/></devices></item>`
	const avatarMeta = `<item id='0123456789abcdef0123456789abcdef01234567'><metadata xmlns='urn:xmpp:avatar:metadata'>` +
		`<info bytes='100' id='0123456789abcdef0123456789abcdef01234567' type='image/png'/></metadata></item>`
	for i := range 200 {
		from := fmt.Sprintf("stranger%d@spam.example", i)
		if !f.c.handlePEPEvent(ctx, pepNotification(t, from, "urn:xmpp:omemo:2:devices", devList)) {
			t.Fatal("device list notification not recognised")
		}
		if !f.c.handleAvatarEvent(ctx, pepNotification(t, from, "urn:xmpp:avatar:metadata", avatarMeta)) {
			t.Fatal("avatar notification not recognised")
		}
	}
	var lists int
	for i := range 200 {
		l, err := f.c.omemoStore().DeviceList(ctx, omemo.V2, fmt.Sprintf("stranger%d@spam.example", i))
		if err != nil {
			t.Fatal(err)
		}
		if l != nil {
			lists++
		}
	}
	if lists != 0 {
		t.Errorf("%d device lists of strangers stored", lists)
	}
	f.c.avatars.mu.Lock()
	pending := len(f.c.avatars.pending)
	f.c.avatars.mu.Unlock()
	if pending != 0 {
		t.Errorf("%d avatar lookups queued for strangers", pending)
	}
	if n := runtime.NumGoroutine(); n > goroutines+5 {
		t.Errorf("%d goroutines after the flood, %d before", n, goroutines)
	}
	var ghosts int
	if err := f.db.QueryRow(ctx, `SELECT COUNT(*) FROM ghost`).Scan(&ghosts); err != nil {
		t.Fatal(err)
	}
	if ghosts != 0 {
		t.Errorf("%d ghosts created by strangers' notifications", ghosts)
	}

	// The roster contact's list is kept.
	f.c.handlePEPEvent(ctx, pepNotification(t, contact.String(), "urn:xmpp:omemo:2:devices", devList))
	if l, err := f.c.omemoStore().DeviceList(ctx, omemo.V2, contact.String()); err != nil || len(l) != 2 {
		t.Errorf("contact's device list: %v, %v", l, err)
	}
}

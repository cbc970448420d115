package xmppclient

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
)

func parseEvent(t *testing.T, node, items string) pubsub.Event {
	t.Helper()
	raw := `<message xmlns="jabber:client" from="bob@example.org" to="alice@example.org"><event xmlns="http://jabber.org/protocol/pubsub#event">` +
		`<items node="` + node + `">` + items + `</items></event></message>`
	ev, err := pubsub.ParseEvent(xml.NewDecoder(strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestPEPNotifications: the payloads the connector acts on are read here;
// another node is not claimed, an item without payload asks for a lookup,
// a malformed one is an error, and bookmarks keep what was readable.
func TestPEPNotifications(t *testing.T) {
	const avatarInfo = `<metadata xmlns="urn:xmpp:avatar:metadata"><info id="0123456789abcdef0123456789abcdef01234567" bytes="10" type="image/png"/></metadata>`
	for _, tc := range []struct {
		name      string
		node      string
		items     string
		avatar    bool // claimed as an avatar notification
		withMeta  bool
		bookmarks bool // claimed as a bookmarks notification
		marks     int
		wantErr   bool
	}{
		{name: "avatar", node: "urn:xmpp:avatar:metadata", items: `<item id="0123456789abcdef0123456789abcdef01234567">` + avatarInfo + `</item>`, avatar: true, withMeta: true},
		{name: "avatar without payload", node: "urn:xmpp:avatar:metadata", items: `<item id="x"/>`, avatar: true},
		{name: "malformed avatar", node: "urn:xmpp:avatar:metadata", items: `<item id="x"><metadata xmlns="urn:xmpp:avatar:other"/></item>`, avatar: true, wantErr: true},
		{name: "bookmarks", node: "urn:xmpp:bookmarks:1", items: `<item id="room@muc.example.org"><conference xmlns="urn:xmpp:bookmarks:1" autojoin="true"><nick>al</nick></conference></item>` +
			`<item id="not a jid@@"><conference xmlns="urn:xmpp:bookmarks:1"/></item>`, bookmarks: true, marks: 1, wantErr: true},
		{name: "another node", node: "urn:xmpp:omemo:2:devices", items: `<item id="current"><devices xmlns="urn:xmpp:omemo:2"/></item>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := parseEvent(t, tc.node, tc.items)
			meta, ok, err := AvatarNotification(ev)
			if ok != tc.avatar {
				t.Fatalf("avatar notification = %v, want %v", ok, tc.avatar)
			}
			if tc.avatar {
				if (err != nil) != tc.wantErr || (meta != nil) != tc.withMeta {
					t.Errorf("meta = %v, err = %v; want meta %v, error %v", meta, err, tc.withMeta, tc.wantErr)
				}
				if meta != nil && (len(meta.Infos) != 1 || meta.Infos[0].Bytes != 10) {
					t.Errorf("meta = %+v", meta)
				}
			}
			marks, ok, err := BookmarksNotification(ev)
			if ok != tc.bookmarks {
				t.Fatalf("bookmarks notification = %v, want %v", ok, tc.bookmarks)
			}
			if tc.bookmarks {
				if (err != nil) != tc.wantErr || len(marks) != tc.marks {
					t.Errorf("marks = %v, err = %v; want %d marks, error %v", marks, err, tc.marks, tc.wantErr)
				}
				if len(marks) > 0 && (marks[0].JID.String() != "room@muc.example.org" || !marks[0].Autojoin || marks[0].Nick != "al") {
					t.Errorf("mark = %+v", marks[0])
				}
			}
		})
	}
}

// TestDeviceListNotification: a device list notification is read for the
// connector; any other node is not one.
func TestDeviceListNotification(t *testing.T) {
	own := jid.MustParse("alice@example.org")
	ev := parseEvent(t, "urn:xmpp:omemo:2:devices", `<item id="current"><devices xmlns="urn:xmpp:omemo:2"><device id="7"/><device id="9" label="phone"/></devices></item>`)
	upd, err := DeviceListNotification(ev, own)
	if err != nil {
		t.Fatal(err)
	}
	if upd.JID.String() != "bob@example.org" || upd.Version != omemo.V2 || len(upd.Devices) != 2 {
		t.Errorf("update = %+v", upd)
	}
	other := parseEvent(t, "urn:xmpp:avatar:metadata", `<item id="x"/>`)
	if _, err := DeviceListNotification(other, own); !errors.Is(err, omemoxmpp.ErrNotDeviceList) {
		t.Errorf("avatar node: err = %v, want ErrNotDeviceList", err)
	}
}

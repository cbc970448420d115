package xmppclient

import "testing"

func TestClassify(t *testing.T) {
	const (
		chat    = `<message xmlns="jabber:client" from="bob@example.org/phone" type="chat" id="m1"><body>hi</body></message>`
		archive = `<message xmlns="jabber:client" from="bob@example.org/phone" to="alice@example.org" type="chat" id="m1"><body>old</body></message>`
	)
	for _, tc := range []struct {
		name, xml string
		kind      Kind
		err       bool
		node      string
		archiveID string
	}{
		{name: "chat", xml: chat, kind: KindChat},
		{name: "carbon", xml: `<message xmlns="jabber:client" from="alice@example.org" type="chat"><sent xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0">` + chat + `</forwarded></sent></message>`, kind: KindChat},
		{name: "groupchat", xml: `<message xmlns="jabber:client" from="room@muc.example.org/bob" type="groupchat" id="g1"><body>hi</body></message>`, kind: KindGroupchat},
		{name: "archive result", xml: archiveResult("q1", archive), kind: KindArchived, archiveID: "arch-7"},
		{name: "malformed archive result", xml: `<message xmlns="jabber:client"><result xmlns="urn:xmpp:mam:2" queryid="q1" id="a"/></message>`, kind: KindArchived, err: true},
		{name: "result nested deeper is not one", xml: `<message xmlns="jabber:client" type="chat"><x xmlns="urn:example"><result xmlns="urn:xmpp:mam:2" queryid="q1" id="a"/></x><body>hi</body></message>`, kind: KindChat},
		{name: "avatar notification", xml: `<message xmlns="jabber:client" from="bob@example.org" type="headline"><event xmlns="http://jabber.org/protocol/pubsub#event"><items node="urn:xmpp:avatar:metadata"><item id="abc"><metadata xmlns="urn:xmpp:avatar:metadata"/></item></items></event></message>`, kind: KindPubSub, node: "urn:xmpp:avatar:metadata"},
		{name: "device list notification", xml: `<message xmlns="jabber:client" from="bob@example.org" type="headline"><event xmlns="http://jabber.org/protocol/pubsub#event"><items node="urn:xmpp:omemo:2:devices"><item id="current"><devices xmlns="urn:xmpp:omemo:2"><device id="1"/></devices></item></items></event></message>`, kind: KindPubSub, node: "urn:xmpp:omemo:2:devices"},
		{name: "room presence", xml: `<presence xmlns="jabber:client" from="room@muc.example.org/bob"><x xmlns="http://jabber.org/protocol/muc#user"/></presence>`, kind: KindRoomPresence},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Classify(tokens(t, tc.xml))
			if in.Kind != tc.kind || (in.Err != nil) != tc.err {
				t.Fatalf("kind %d (err %v), want %d (err %v)", in.Kind, in.Err, tc.kind, tc.err)
			}
			if in.Event.Node != tc.node {
				t.Errorf("node %q, want %q", in.Event.Node, tc.node)
			}
			if in.Archived.ArchiveID != tc.archiveID {
				t.Errorf("archive id %q, want %q", in.Archived.ArchiveID, tc.archiveID)
			}
		})
	}
}

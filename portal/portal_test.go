package portal

import (
	"errors"
	"testing"

	"maunium.net/go/mautrix/bridgev2/networkid"
	"mellium.im/xmpp/jid"
)

func TestKeys(t *testing.T) {
	const login = networkid.UserLoginID("alice@example.org")
	for _, tc := range []struct {
		name string
		key  networkid.PortalKey
		want networkid.PortalKey
		kind Kind
		jid  string
	}{
		{"dm", DMKey(jid.MustParse("bob@example.org"), login), networkid.PortalKey{ID: "bob@example.org", Receiver: login}, DM, "bob@example.org"},
		{"dm full jid", DMKey(jid.MustParse("Bob@Example.org/phone"), login), networkid.PortalKey{ID: "bob@example.org", Receiver: login}, DM, "bob@example.org"},
		{"muc shared", MUCKey(jid.MustParse("room@conference.example.org/nick"), login, false), networkid.PortalKey{ID: "muc:room@conference.example.org"}, MUC, "room@conference.example.org"},
		{"muc split", MUCKey(jid.MustParse("room@conference.example.org"), login, true), networkid.PortalKey{ID: "muc:room@conference.example.org", Receiver: login}, MUC, "room@conference.example.org"},
		{"pm", PMKey(jid.MustParse("Room@Conference.example.org/Nick Name"), login), networkid.PortalKey{ID: "pm:room@conference.example.org/Nick Name", Receiver: login}, PM, "room@conference.example.org/Nick Name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.key != tc.want {
				t.Fatalf("key = %+v, want %+v", tc.key, tc.want)
			}
			chat, err := Parse(tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if chat.Kind != tc.kind || chat.JID.String() != tc.jid || chat.Login != tc.key.Receiver {
				t.Fatalf("Parse = %+v", chat)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	for _, key := range []networkid.PortalKey{
		{ID: "", Receiver: "a@b"},
		{ID: "bob@example.org"}, // 1:1 without receiver
		{ID: "bob@example.org/res", Receiver: "a@b"},
		{ID: "Bob@example.org", Receiver: "a@b"},
		{ID: "muc:", Receiver: "a@b"},
		{ID: "muc:room@conference.example.org/nick"},
		{ID: "pm:room@conference.example.org", Receiver: "a@b"},      // no nick
		{ID: "pm:conference.example.org/nick", Receiver: "a@b"},      // no room
		{ID: "pm:room@conference.example.org/nick"},                  // no login
		{ID: "pm:Room@conference.example.org/nick", Receiver: "a@b"}, // not canonical
	} {
		if _, err := Parse(key); !errors.Is(err, ErrBadKey) {
			t.Errorf("Parse(%+v) err = %v, want ErrBadKey", key, err)
		}
	}
}

package puppet

import (
	"errors"
	"testing"

	"maunium.net/go/mautrix/bridgev2/networkid"
	"mellium.im/xmpp/jid"
)

func TestUserIDRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want networkid.UserID
	}{
		{"bob@example.org", "bob@example.org"},
		{"bob@example.org/phone", "bob@example.org"},
		{"Bob@Example.ORG", "bob@example.org"},
		{"example.org", "example.org"},
		{"conference.example.org", "conference.example.org"},
		{"ünicode@example.org", "ünicode@example.org"},
	} {
		got := UserID(jid.MustParse(tc.in))
		if got != tc.want {
			t.Errorf("UserID(%q) = %q, want %q", tc.in, got, tc.want)
			continue
		}
		back, err := ParseUserID(got)
		if err != nil || UserID(back) != got {
			t.Errorf("ParseUserID(%q) = %v, %v", got, back, err)
		}
		lid := LoginID(jid.MustParse(tc.in))
		if string(lid) != string(tc.want) {
			t.Errorf("LoginID(%q) = %q", tc.in, lid)
		}
		if j, err := ParseLoginID(lid); err != nil || string(LoginID(j)) != string(lid) {
			t.Errorf("ParseLoginID(%q) = %v, %v", lid, j, err)
		}
	}
}

func TestParseUserIDRejects(t *testing.T) {
	for _, id := range []networkid.UserID{
		"",
		"bob@example.org/phone",
		"Bob@example.org", // not canonical: would make a second ghost
		"bob@@example.org",
		"muc:room@conference.example.org",
	} {
		if _, err := ParseUserID(id); !errors.Is(err, ErrNotBareJID) {
			t.Errorf("ParseUserID(%q) err = %v, want ErrNotBareJID", id, err)
		}
		if ValidUserID(id) {
			t.Errorf("ValidUserID(%q) = true", id)
		}
	}
}

func TestName(t *testing.T) {
	for _, tc := range []struct {
		roster, jid, want string
	}{
		{"Bob Builder", "bob@example.org", "Bob Builder"},
		{"  ", "bob@example.org", "bob"},
		{"", "bob@example.org/res", "bob"},
		{"", "example.org", "example.org"},
	} {
		if got := Name(tc.roster, jid.MustParse(tc.jid)); got != tc.want {
			t.Errorf("Name(%q, %q) = %q, want %q", tc.roster, tc.jid, got, tc.want)
		}
	}
}

func TestOccupantID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want networkid.UserID
	}{
		{"room@conference.example.org/bob", "muc:room@conference.example.org/bob"},
		{"Room@Conference.example.org/Bob the Builder", "muc:room@conference.example.org/Bob the Builder"},
		{"room@conference.example.org/nick/with/slashes", "muc:room@conference.example.org/nick/with/slashes"},
		{"room@conference.example.org/ünï ☃", "muc:room@conference.example.org/ünï ☃"},
	} {
		got := OccupantUserID(jid.MustParse(tc.in))
		if got != tc.want {
			t.Errorf("OccupantUserID(%q) = %q, want %q", tc.in, got, tc.want)
			continue
		}
		back, err := ParseOccupantID(got)
		if err != nil || OccupantUserID(back) != got {
			t.Errorf("ParseOccupantID(%q) = %v, %v", got, back, err)
		}
		if !ValidUserID(got) {
			t.Errorf("ValidUserID(%q) = false", got)
		}
		if _, err := ParseUserID(got); err == nil {
			t.Errorf("ParseUserID accepts the occupant ID %q", got)
		}
	}
	for _, id := range []networkid.UserID{
		"bob@example.org",
		"muc:room@conference.example.org",
		"muc:conference.example.org/bob",
		"muc:Room@conference.example.org/bob",
		"muc:",
		"room@conference.example.org/bob",
	} {
		if _, err := ParseOccupantID(id); !errors.Is(err, ErrNotOccupant) {
			t.Errorf("ParseOccupantID(%q) err = %v, want ErrNotOccupant", id, err)
		}
	}
}

// TestOccupantGhost: an occupant is the ghost of its real JID where the
// room shows it, else its own occupant ghost; we are ourselves by our nick
// or our account from another client.
func TestOccupantGhost(t *testing.T) {
	room := jid.MustParse("room@muc.example.org")
	me := jid.MustParse("alice@example.org")
	for _, tc := range []struct {
		name       string
		nick, real string
		want       networkid.UserID
		wantFromMe bool
	}{
		{"our nick", "al", "", "alice@example.org", true},
		{"our account from another client", "alice-phone", "alice@example.org/phone", "alice@example.org", true},
		{"a real JID shown", "bob", "bob@example.org/laptop", "bob@example.org", false},
		{"a real JID hidden", "bob", "", "muc:room@muc.example.org/bob", false},
	} {
		var real jid.JID
		if tc.real != "" {
			real = jid.MustParse(tc.real)
		}
		id, fromMe := OccupantGhost(room, "al", tc.nick, real, me)
		if id != tc.want || fromMe != tc.wantFromMe {
			t.Errorf("%s: %q %v, want %q %v", tc.name, id, fromMe, tc.want, tc.wantFromMe)
		}
	}
}

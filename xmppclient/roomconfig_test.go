package xmppclient

import (
	"context"
	"errors"
	"testing"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/mucadmin"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
)

// applyStanza gives rs one stanza from the room as the connector would,
// and returns the configuration change it reported.
func applyStanza(t *testing.T, rs *Rooms, s string) *ConfigChange {
	t.Helper()
	in := Classify(tokens(t, s))
	if in.Err != nil {
		t.Fatal(in.Err)
	}
	switch in.Kind {
	case KindRoomPresence:
		_, out, _ := rs.ApplyPresence(in.Presence)
		return out.Config
	case KindGroupchat:
		_, cfg := rs.ApplyRoomMessage(in.Room.Message)
		return cfg
	}
	_, cfg := rs.ApplyAnnouncement(in)
	return cfg
}

// joinedAs is a Rooms with testRoom joined as alice, with features and
// our presence's status codes.
func joinedAs(t *testing.T, features mucadmin.RoomInfo, status ...string) *Rooms {
	t.Helper()
	rs := NewRooms()
	rs.StartJoin(jid.MustParse(testRoom), "alice", mucroom.Info{}, features)
	rs.ApplyPresence(mustPresence(t, affPresence("alice", "alice@example.org/bridge", "member", "", append([]string{"110"}, status...)...)))
	return rs
}

// TestRoomConfigStatus: the status codes of a configuration change
// (XEP-0045 §10.2.1) set who sees real JIDs at once, in the room's
// messages (groupchat or not) and presences; history says nothing of now.
func TestRoomConfigStatus(t *testing.T) {
	nonAnon := mucadmin.RoomInfo{Anonymity: mucadmin.NonAnonymous, MembersOnly: true}
	semi := mucadmin.RoomInfo{Anonymity: mucadmin.SemiAnonymous, MembersOnly: true}
	const delayed = `<message` + nsC + ` from="` + testRoom + `" type="groupchat"><x` + nsMUCUser + `><status code="173"/></x>` +
		`<delay xmlns="urn:xmpp:delay" stamp="2020-01-01T00:00:00Z"/></message>`
	tests := []struct {
		name     string
		features mucadmin.RoomInfo
		status   []string // of our join presence
		stanza   string
		change   bool // a ConfigChange is reported
		wantNon  bool
		wantAnon mucadmin.Anonymity
	}{
		{"173 semi-anonymous in groupchat", nonAnon, []string{"100"},
			roomAnnouncement(testRoom, "groupchat", `<status code="104"/><status code="173"/>`), true, false, mucadmin.SemiAnonymous},
		{"174 fully anonymous in a normal message", nonAnon, []string{"100"},
			roomAnnouncement(testRoom, "", `<status code="174"/>`), true, false, mucadmin.FullyAnonymous},
		{"173 in a presence", nonAnon, []string{"100"},
			affPresence("alice", "alice@example.org/bridge", "member", "", "110", "173"), true, false, mucadmin.SemiAnonymous},
		{"172 non-anonymous", semi, nil,
			roomAnnouncement(testRoom, "groupchat", `<status code="104"/><status code="172"/>`), true, true, mucadmin.NonAnonymous},
		{"104 alone keeps the anonymity", nonAnon, []string{"100"},
			roomAnnouncement(testRoom, "groupchat", `<status code="104"/>`), true, true, mucadmin.NonAnonymous},
		{"173 from history is not now", nonAnon, []string{"100"}, delayed, false, true, mucadmin.NonAnonymous},
		{"an affiliation change is no configuration change", nonAnon, []string{"100"},
			roomAnnouncement(testRoom, "", `<item affiliation="member" jid="erin@example.org"/>`), false, true, mucadmin.NonAnonymous},
		{"173 of another room", nonAnon, []string{"100"},
			roomAnnouncement("other@conference.example.org", "groupchat", `<status code="173"/>`), false, true, mucadmin.NonAnonymous},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := joinedAs(t, tt.features, tt.status...)
			before, _ := rs.Get(jid.MustParse(testRoom))
			cfg := applyStanza(t, rs, tt.stanza)
			if (cfg != nil) != tt.change {
				t.Fatalf("configuration change reported: %v, want %v", cfg != nil, tt.change)
			}
			r, _ := rs.Get(jid.MustParse(testRoom))
			if r.NonAnonymous != tt.wantNon || r.Features.Anonymity != tt.wantAnon {
				t.Errorf("NonAnonymous %v, anonymity %v; want %v, %v", r.NonAnonymous, r.Features.Anonymity, tt.wantNon, tt.wantAnon)
			}
			if cfg == nil {
				return
			}
			if cfg.Before.NonAnonymous != before.NonAnonymous || cfg.Before.Features.Anonymity != before.Features.Anonymity ||
				cfg.After.NonAnonymous != r.NonAnonymous || cfg.After.Features.Anonymity != r.Features.Anonymity {
				t.Errorf("change %v/%v -> %v/%v, want %v/%v -> %v/%v", cfg.Before.NonAnonymous, cfg.Before.Features.Anonymity,
					cfg.After.NonAnonymous, cfg.After.Features.Anonymity, before.NonAnonymous, before.Features.Anonymity, r.NonAnonymous, r.Features.Anonymity)
			}
			if got := memberSet(rs); got != nil {
				t.Errorf("the member lists survived the configuration change: %q", got)
			}
		})
	}
}

// TestRoomRejoinForgetsNonAnonymous: status 100 of an earlier join says
// nothing of the next one.
func TestRoomRejoinForgetsNonAnonymous(t *testing.T) {
	rs := joinedAs(t, mucadmin.RoomInfo{}, "100")
	rs.ApplyPresence(mustPresence(t, affPresence("alice", "alice@example.org/bridge", "member", "unavailable", "110")))
	rs.StartJoin(jid.MustParse(testRoom), "alice", mucroom.Info{}, mucadmin.RoomInfo{Anonymity: mucadmin.SemiAnonymous})
	rs.ApplyPresence(mustPresence(t, affPresence("alice", "alice@example.org/bridge", "member", "", "110")))
	if r, _ := rs.Get(jid.MustParse(testRoom)); r.NonAnonymous || !r.Joined {
		t.Errorf("after a rejoin without status 100: NonAnonymous %v, joined %v", r.NonAnonymous, r.Joined)
	}
}

// TestRoomRefreshFeatures: the disco#info read after a configuration
// change is kept unless the room changed again or we rejoined meanwhile;
// without an anonymity feature the status codes' word stands.
func TestRoomRefreshFeatures(t *testing.T) {
	nonAnon := mucadmin.RoomInfo{Anonymity: mucadmin.NonAnonymous, MembersOnly: true}
	failure := errors.New("timeout")
	tests := []struct {
		name     string
		change   string // the status codes of the change
		answer   mucadmin.RoomInfo
		err      error
		between  func(t *testing.T, rs *Rooms) // while the read runs
		kept     bool
		wantNon  bool
		wantAnon mucadmin.Anonymity
		wantMO   bool
	}{
		{"104: no longer members-only", `<status code="104"/>`, mucadmin.RoomInfo{Anonymity: mucadmin.NonAnonymous}, nil, nil,
			true, true, mucadmin.NonAnonymous, false},
		{"104: disco says semi-anonymous", `<status code="104"/>`, mucadmin.RoomInfo{Anonymity: mucadmin.SemiAnonymous, MembersOnly: true}, nil, nil,
			true, false, mucadmin.SemiAnonymous, true},
		{"174: disco names no anonymity", `<status code="104"/><status code="174"/>`, mucadmin.RoomInfo{MembersOnly: true}, nil, nil,
			true, false, mucadmin.FullyAnonymous, true},
		{"overtaken by a 173", `<status code="104"/>`, nonAnon, nil, func(t *testing.T, rs *Rooms) {
			applyStanza(t, rs, roomAnnouncement(testRoom, "groupchat", `<status code="173"/>`))
		}, false, false, mucadmin.SemiAnonymous, true},
		{"overtaken by a rejoin", `<status code="104"/>`, mucadmin.RoomInfo{Anonymity: mucadmin.SemiAnonymous}, nil, func(t *testing.T, rs *Rooms) {
			rs.StartJoin(jid.MustParse(testRoom), "alice", mucroom.Info{}, nonAnon)
			rs.ApplyPresence(mustPresence(t, affPresence("alice", "alice@example.org/bridge", "member", "", "110", "100")))
		}, false, true, mucadmin.NonAnonymous, true},
		{"failed read", `<status code="104"/><status code="173"/>`, mucadmin.RoomInfo{}, failure, nil,
			false, false, mucadmin.SemiAnonymous, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := joinedAs(t, nonAnon, "100")
			cfg := applyStanza(t, rs, roomAnnouncement(testRoom, "groupchat", tt.change))
			if cfg == nil {
				t.Fatal("no configuration change reported")
			}
			rs.readFeatures = func(context.Context, *xmpp.Session, jid.JID) (mucroom.Info, mucadmin.RoomInfo, error) {
				if tt.between != nil {
					tt.between(t, rs)
				}
				return mucroom.Info{Name: "renamed"}, tt.answer, tt.err
			}
			_, after, kept, err := rs.RefreshFeatures(context.Background(), nil, cfg)
			if !errors.Is(err, tt.err) || kept != tt.kept {
				t.Fatalf("RefreshFeatures: kept %v, %v; want %v, %v", kept, err, tt.kept, tt.err)
			}
			r, _ := rs.Get(jid.MustParse(testRoom))
			if r.NonAnonymous != tt.wantNon || r.Features.Anonymity != tt.wantAnon || r.Features.MembersOnly != tt.wantMO {
				t.Errorf("NonAnonymous %v, anonymity %v, members-only %v; want %v, %v, %v",
					r.NonAnonymous, r.Features.Anonymity, r.Features.MembersOnly, tt.wantNon, tt.wantAnon, tt.wantMO)
			}
			if kept && (after.Info.Name != "renamed" || r.Info.Name != "renamed") {
				t.Errorf("the room's name after the read: %q, %q", after.Info.Name, r.Info.Name)
			}
		})
	}
}

package puppet

import (
	"encoding/json"
	"testing"
)

// The metadata is bridgev2's database JSON: a renamed tag would silently
// drop what existing rows hold.
func TestMetadataJSON(t *testing.T) {
	for _, tc := range []struct {
		v    Metadata
		want string
	}{
		{Metadata{RosterName: "Bob", Nick: "bobby"}, `{"roster_name":"Bob","nick":"bobby"}`},
		{Metadata{}, `{}`},
	} {
		got, err := json.Marshal(tc.v)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("got %s, want %s", got, tc.want)
		}
	}
}

// TestMetadataSetters: a name is recorded once; an empty one clears
// nothing; a ghost without our metadata (nil) is left alone.
func TestMetadataSetters(t *testing.T) {
	for _, tc := range []struct {
		name    string
		m       *Metadata
		roster  string
		nick    string
		changed [2]bool
		want    Metadata
	}{
		{"new names", &Metadata{}, "Bob", "bobby", [2]bool{true, true}, Metadata{RosterName: "Bob", Nick: "bobby"}},
		{"same names", &Metadata{RosterName: "Bob", Nick: "bobby"}, "Bob", "bobby", [2]bool{false, false}, Metadata{RosterName: "Bob", Nick: "bobby"}},
		{"empty clears nothing", &Metadata{RosterName: "Bob", Nick: "bobby"}, "", "", [2]bool{false, false}, Metadata{RosterName: "Bob", Nick: "bobby"}},
		{"renamed", &Metadata{RosterName: "Bob"}, "Robert", "", [2]bool{true, false}, Metadata{RosterName: "Robert"}},
		{"no metadata", nil, "Bob", "bobby", [2]bool{false, false}, Metadata{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := [2]bool{tc.m.SetRosterName(tc.roster), tc.m.SetNick(tc.nick)}
			if got != tc.changed {
				t.Errorf("changed = %v, want %v", got, tc.changed)
			}
			if tc.m != nil && *tc.m != tc.want {
				t.Errorf("metadata = %+v, want %+v", *tc.m, tc.want)
			}
		})
	}
}

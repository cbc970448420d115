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

package portal

import (
	"encoding/json"
	"testing"
)

// The metadata is bridgev2's database JSON: a renamed tag would silently
// drop what existing rows hold.
func TestMetadataJSON(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"portal", Metadata{Kind: "dm", OMEMO: true, OMEMOOff: true, PlainNoticed: true},
			`{"kind":"dm","omemo":true,"omemo_off":true,"plain_noticed":true}`},
		{"portal empty", Metadata{}, `{}`},
		{"message", MessageMetadata{OriginID: "o", StanzaID: "s", Markable: true, CorrectionIDs: []string{"c"}, OccupantID: "x"},
			`{"origin_id":"o","stanza_id":"s","markable":true,"correction_ids":["c"],"occupant_id":"x"}`},
		{"message empty", MessageMetadata{}, `{}`},
	} {
		got, err := json.Marshal(tc.v)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if string(got) != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestMetadataSetKind: the kind is written once, as Kind.String spells it.
func TestMetadataSetKind(t *testing.T) {
	for _, tc := range []struct {
		name    string
		m       *Metadata
		kind    Kind
		changed bool
		want    string
	}{
		{"new", &Metadata{}, MUC, true, "muc"},
		{"same", &Metadata{Kind: "dm"}, DM, false, "dm"},
		{"changed", &Metadata{Kind: "dm"}, PM, true, "pm"},
		{"no metadata", nil, DM, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.m.SetKind(tc.kind); got != tc.changed {
				t.Errorf("changed = %v, want %v", got, tc.changed)
			}
			if tc.m != nil && tc.m.Kind != tc.want {
				t.Errorf("kind = %q, want %q", tc.m.Kind, tc.want)
			}
		})
	}
}

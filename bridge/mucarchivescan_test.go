package bridge

import (
	"context"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
)

// TestRoomScanCache: the replay's rows are answered from one archive scan
// that covers them; a row older than the scan, or a scan past its time,
// scans again.
func TestRoomScanCache(t *testing.T) {
	room := jid.MustParse("room@conference.example")
	t0 := time.Now()
	var scans []time.Time
	scan := func(_ context.Context, from time.Time) (map[string]bool, error) {
		scans = append(scans, from)
		return map[string]bool{"a": true, "b": true}, nil
	}
	var rc roomScanCache
	for _, tc := range []struct {
		id    string
		since time.Time
		want  bool
		scans int
	}{
		{"a", t0, true, 1},
		{"b", t0.Add(time.Second), true, 1}, // newer row: the same scan
		{"c", t0.Add(2 * time.Second), false, 1},
		{"a", t0.Add(-time.Minute), true, 2}, // older than the scan: a new one
	} {
		got, err := rc.has(context.Background(), room, tc.id, tc.since, scan)
		if err != nil || got != tc.want || len(scans) != tc.scans {
			t.Errorf("%s since %v: got %v, %v after %d scans; want %v after %d", tc.id, tc.since.Sub(t0), got, err, len(scans), tc.want, tc.scans)
		}
	}
	if want := t0.Add(-time.Minute - roomScanSkew); !scans[1].Equal(want) {
		t.Errorf("second scan from %v, want %v (the row's time less the skew margin)", scans[1], want)
	}
	// Past its time a scan is not used.
	rc.scans[room.String()].at = time.Now().Add(-roomScanTTL - time.Second)
	if _, err := rc.has(context.Background(), room, "a", t0, scan); err != nil || len(scans) != 3 {
		t.Errorf("a stale scan was used (%d scans, err %v)", len(scans), err)
	}
}

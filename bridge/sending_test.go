package bridge

import (
	"testing"
	"time"
)

// TestSettleWait: a mark left by a crash is looked at only once it is
// sendingSettle old, so that the killed process's send has finished on the
// homeserver and can be found (else it would be sent a second time).
func TestSettleWait(t *testing.T) {
	now := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		started time.Time
		want    time.Duration
	}{
		{"just written", now, sendingSettle},
		{"three seconds old", now.Add(-3 * time.Second), sendingSettle - 3*time.Second},
		{"settled", now.Add(-sendingSettle), 0},
		{"old", now.Add(-time.Hour), 0},
		{"clock went back", now.Add(time.Minute), sendingSettle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := settleWait(tt.started, now); got != tt.want {
				t.Errorf("settleWait = %v, want %v", got, tt.want)
			}
		})
	}
}

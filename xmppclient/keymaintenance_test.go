package xmppclient

import (
	"context"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemo"
)

// openedOMEMO is a login's OMEMO with its device set up on a memory store.
func openedOMEMO(t *testing.T) *OMEMO {
	t.Helper()
	o := &OMEMO{}
	if _, err := o.Open(t.Context(), omemo.NewMemoryStore(), jid.MustParse("a@example.org"), omemo.TrustPolicy(0)); err != nil {
		t.Fatal(err)
	}
	return o
}

// TestKeyMaintenanceOneTimer: the devices kept within one slack are
// maintained from one timer wake-up, and kept again afterwards; a device
// forgotten or whose context ended leaves the schedule and can be kept again.
func TestKeyMaintenanceOneTimer(t *testing.T) {
	tests := []struct {
		name    string
		devices int
		drop    func(o *OMEMO, cancel context.CancelFunc) // after the first round; nil: kept
	}{
		{name: "kept", devices: 50},
		{name: "forgotten", devices: 3, drop: func(o *OMEMO, _ context.CancelFunc) { o.Forget() }},
		{name: "context ended", devices: 3, drop: func(_ *OMEMO, cancel context.CancelFunc) { cancel() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := &KeyMaintenance{Interval: 300 * time.Millisecond, Slack: time.Hour}
			var (
				mu    sync.Mutex
				fires [][]int64 // per device, the timer firing of each run
				runs  = make(chan int, 4*tt.devices)
			)
			fires = make([][]int64, tt.devices)
			devs := make([]*OMEMO, tt.devices)
			cancels := make([]context.CancelFunc, tt.devices)
			for i := range devs { // set up before any is kept: all are kept within the interval
				devs[i] = openedOMEMO(t)
			}
			for i := range devs {
				ctx, cancel := context.WithCancel(t.Context())
				cancels[i] = cancel
				k.Keep(ctx, devs[i], func() bool {
					mu.Lock()
					fires[i] = append(fires[i], k.fires.Load())
					mu.Unlock()
					runs <- i
					return false // no session: nothing is published
				})
				k.Keep(ctx, devs[i], func() bool { t.Error("a device kept twice"); return false })
			}
			if got := k.Len(); got != tt.devices {
				t.Fatalf("schedule holds %d devices, want %d", got, tt.devices)
			}
			for range tt.devices {
				<-runs
			}
			mu.Lock()
			for i, f := range fires {
				if len(f) != 1 || f[0] != 1 {
					t.Errorf("device %d ran at timer firings %v, want all in the first", i, f)
				}
			}
			mu.Unlock()
			if tt.drop == nil {
				for range tt.devices { // the second round
					<-runs
				}
				if got := k.Len(); got != tt.devices {
					t.Errorf("after two rounds the schedule holds %d devices, want %d", got, tt.devices)
				}
				return
			}
			for i := range devs {
				tt.drop(devs[i], cancels[i])
			}
			deadline := time.Now().Add(30 * time.Second)
			for k.Len() > 0 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if got := k.Len(); got != 0 {
				t.Fatalf("%d dropped devices still in the schedule", got)
			}
			if len(runs) != 0 {
				t.Errorf("%d dropped devices were maintained", len(runs))
			}
			o := openedOMEMO(t)
			k.Keep(t.Context(), o, func() bool { return false })
			k.Keep(t.Context(), devs[0], func() bool { return false })
			if got, want := k.Len(), 2; got != want {
				t.Errorf("schedule holds %d devices after keeping two again, want %d", got, want)
			}
		})
	}
}

package xmppclient

import (
	"errors"
	"fmt"
	"testing"

	"mellium.im/xmpp/jid"
)

// TestOMEMOQueueLimits: a stranger flooding one kind of work gets at most
// OMEMOPerJIDMax tasks per window, other kinds keep their own budget,
// republishes are coalesced, the queue is bounded, and tasks come out in
// order.
func TestOMEMOQueueLimits(t *testing.T) {
	var q OMEMOQueue
	flood := jid.MustParse("flood@example.org")
	admitted := 0
	for i := range 20 {
		switch err := q.Add(OMEMOTask{Kind: TaskReset, Peer: flood, Device: uint32(i + 1)}); {
		case err == nil:
			admitted++
		case !errors.Is(err, ErrOMEMORateLimited):
			t.Fatalf("reset %d: %v", i, err)
		}
	}
	for _, tc := range []struct {
		name string
		task OMEMOTask
		want error
	}{
		{"fetch: its own budget", OMEMOTask{Kind: TaskFetchDevices, Peer: flood}, nil},
		{"first republish", OMEMOTask{Kind: TaskRepublish}, nil},
		{"second republish coalesced", OMEMOTask{Kind: TaskRepublish}, ErrOMEMORateLimited},
		{"own list never limited", OMEMOTask{Kind: TaskOwnList}, nil},
	} {
		if err := q.Add(tc.task); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if admitted != OMEMOPerJIDMax || q.Admitted(OMEMOTask{Kind: TaskReset, Peer: flood}) != OMEMOPerJIDMax {
		t.Errorf("admitted %d resets (counted %d), want %d", admitted, q.Admitted(OMEMOTask{Kind: TaskReset, Peer: flood}), OMEMOPerJIDMax)
	}
	if got := q.Pending(); len(got) != OMEMOPerJIDMax+3 || got[0].Device != 1 || got[len(got)-1].Kind != TaskOwnList {
		t.Errorf("pending %+v", got)
	}
	// Distinct JIDs fill the queue up to its bound.
	full := 0
	for i := range OMEMOQueueSize {
		if err := q.Add(OMEMOTask{Kind: TaskFetchDevices, Peer: jid.MustParse(fmt.Sprintf("u%d@example.org", i))}); errors.Is(err, ErrOMEMOQueueFull) {
			full++
		}
	}
	if q.Len() != OMEMOQueueSize || full == 0 {
		t.Errorf("queue holds %d (bound %d), %d refused as full", q.Len(), OMEMOQueueSize, full)
	}
	// Taking the republish lets a new one in.
	for {
		task, ok := q.Next()
		if !ok {
			break
		}
		if task.Kind == TaskRepublish {
			break
		}
	}
	if err := q.Add(OMEMOTask{Kind: TaskRepublish}); err != nil {
		t.Errorf("republish after the queued one was taken: %v", err)
	}
}

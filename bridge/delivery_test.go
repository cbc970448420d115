package bridge

import (
	"context"
	"testing"

	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// TestTrackable: only live messages and results of the running catch-up enter the watermark.
func TestTrackable(t *testing.T) {
	c := &Client{}
	c.delivery.order.Step(context.Background(), xmppclient.Event{Mark: xmppclient.MarkCatchUpStart, Seq: 2}, func(context.Context, xmppclient.Event) {})
	tests := []struct {
		name string
		in   incoming
		want bool
	}{
		{"live with archive id", incoming{Message: xmppclient.Message{StanzaID: "a1"}}, true},
		{"live without archive id", incoming{}, false},
		{"result of the running catch-up", incoming{Message: xmppclient.Message{StanzaID: "a1", Archived: true}, catchUpSeq: 2}, true},
		{"late result of an earlier catch-up", incoming{Message: xmppclient.Message{StanzaID: "a1", Archived: true}, catchUpSeq: 1}, false},
		{"result of another query", incoming{Message: xmppclient.Message{StanzaID: "a1", Archived: true}}, false},
	}
	for _, tc := range tests {
		if got := c.trackable(xmppclient.AccountLane, tc.in.StanzaID, tc.in.Archived, tc.in.catchUpSeq); got != tc.want {
			t.Errorf("%s: trackable = %v, want %v", tc.name, got, tc.want)
		}
	}
}

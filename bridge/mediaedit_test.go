package bridge

import (
	"testing"

	"maunium.net/go/mautrix/event"
)

func TestRefuseFileEdit(t *testing.T) {
	for _, tc := range []struct {
		typ     event.MessageType
		refused bool
	}{
		{event.MsgText, false}, {event.MsgEmote, false}, {event.MsgNotice, false},
		{event.MsgImage, true}, {event.MsgAudio, true}, {event.MsgFile, true}, {event.MsgVideo, true},
	} {
		if err := refuseFileEdit(&event.MessageEventContent{MsgType: tc.typ}); (err != nil) != tc.refused {
			t.Errorf("edit to %s: %v, refused should be %v", tc.typ, err, tc.refused)
		}
	}
}

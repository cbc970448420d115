package xmppclient

import (
	"testing"

	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/xmpp/avatar"
	"github.com/mxomemo/xmpp-bridge/xmpp/caps"
)

func TestCapsInfo(t *testing.T) {
	info := CapsInfo()
	if _, err := info.Ver(); err != nil {
		t.Fatal(err)
	}
	for _, f := range omemoxmpp.NotifyFeatures {
		if !info.HasFeature(f) {
			t.Errorf("caps lack %s", f)
		}
	}
	if !info.HasFeature(caps.Notify(avatar.NSMetadata)) {
		t.Error("caps lack urn:xmpp:avatar:metadata+notify: contacts' avatar changes would not be pushed")
	}
	if CapsElement() == nil {
		t.Error("no caps element")
	}
}

package bridge

import (
	"context"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/avatar"
)

func TestAvatarState(t *testing.T) {
	var a avatarState
	carol := jid.MustParse("carol@example.org/phone")
	if _, ok := a.lookup(carol); ok {
		t.Fatal("unseen contact looked up")
	}
	a.note(carol, "")
	if id, ok := a.lookup(carol.Bare()); !ok || id != "" {
		t.Errorf("lookup after note = %q, %v", id, ok)
	}
	a.note(carol.Bare(), "abc")
	if id, _ := a.lookup(carol); id != "abc" {
		t.Errorf("lookup = %q, want abc", id)
	}
}

func TestEmptyMetadataRemoves(t *testing.T) {
	c := &Client{}
	// An empty <metadata/> is the contact taking their avatar down; no
	// session is needed to know that.
	av, err := c.avatarFromMetadata(context.Background(), nil, jid.MustParse("carol@example.org"), avatar.Metadata{}, "old")
	if err != nil || av == nil || !av.Remove {
		t.Fatalf("avatarFromMetadata(empty) = %+v, %v; want a removal", av, err)
	}
	_, err = c.avatarFromMetadata(context.Background(), nil, jid.MustParse("carol@example.org"),
		avatar.Metadata{Infos: []avatar.Info{{ID: "a", URL: "https://example.org/a.png"}}}, "old")
	if err == nil {
		t.Error("web-hosted avatar accepted")
	}
}

func TestRefusedAvatar(t *testing.T) {
	var a avatarState
	carol := jid.MustParse("carol@example.org")
	a.refuse(carol, "abc")
	if !a.refused(carol, "abc") || a.refused(carol, "def") || a.refused(jid.MustParse("dave@example.org"), "abc") {
		t.Error("refused images mixed up")
	}
}

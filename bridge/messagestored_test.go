package bridge

import (
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/puppet"
)

// TestMessageStored: messageStored answers as bridgev2's GetFirstPartByID
// would (a row of the login's portal or of a shared one, not another
// login's), on bridgev2's own schema.
func TestMessageStored(t *testing.T) {
	ctx := context.Background()
	f := newInboxFixture(t)
	bdb := f.c.main.Bridge.DB
	if err := bdb.Ghost.Insert(ctx, &database.Ghost{ID: "bob@localhost", Metadata: &puppet.Metadata{}}); err != nil {
		t.Fatal(err)
	}
	put := func(key networkid.PortalKey, msg networkid.MessageID) {
		t.Helper()
		if p, err := bdb.Portal.GetByKey(ctx, key); err != nil {
			t.Fatal(err)
		} else if p == nil {
			if err := bdb.Portal.Insert(ctx, &database.Portal{BridgeID: bdb.BridgeID, PortalKey: key, Metadata: &portal.Metadata{}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := bdb.Message.Insert(ctx, &database.Message{
			ID: msg, PartID: "", MXID: id.EventID("$" + string(msg)), Room: key, SenderID: "bob@localhost",
			Timestamp: time.Now(), Metadata: &portal.MessageMetadata{},
		}); err != nil {
			t.Fatal(err)
		}
	}
	put(networkid.PortalKey{ID: "bob@localhost", Receiver: "alice@localhost"}, "ours")
	put(networkid.PortalKey{ID: "room@muc.localhost"}, "shared")
	put(networkid.PortalKey{ID: "bob@localhost", Receiver: "carol@localhost"}, "carols")

	tests := []struct {
		id   networkid.MessageID
		want bool
	}{
		{"ours", true},
		{"shared", true},
		{"carols", false},
		{"never", false},
	}
	for _, tc := range tests {
		first, err := bdb.Message.GetFirstPartByID(ctx, f.c.login.ID, tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.c.messageStored(ctx, tc.id); got != tc.want || got != (first != nil) {
			t.Errorf("%s: messageStored = %v, want %v (GetFirstPartByID found %v)", tc.id, got, tc.want, first != nil)
		}
	}
}

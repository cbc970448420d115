package e2e

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
	"github.com/mxomemo/xmpp-bridge/xmpp/avatar"
	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
	"github.com/mxomemo/xmpp-bridge/xmpp/vcardphoto"
)

// vcardOnlyProsody is the test Prosody with the classic vcard-temp store (mod_vcard) instead of
// vcard4 + vcard_legacy, which would turn a vCard photo into a XEP-0084 avatar and so hide the
// bridge's vCard fallback. It repeats the default module list otherwise.
const vcardOnlyProsody = `modules_enabled = {
  "roster"; "saslauth"; "tls"; "disco";
  "carbons"; "pep"; "private"; "blocklist"; "vcard"; "bookmarks";
  "version"; "uptime"; "time"; "ping"; "register"; "mam"; "smacks"; "csi_simple";
  "admin_shell"; "posix";
}`

// TestAvatar: contacts' avatars become their ghosts' Matrix avatars. bob publishes a XEP-0084
// avatar before alice logs in (the ghost gets it from the roster sync or the +notify push), then a
// new one once the portal exists (the PEP notification replaces it), then a data item that does
// not match its id (the ghost keeps its avatar), then an empty metadata (the avatar goes); carol only has a vCard photo (the fallback), and
// a changed one announced by a XEP-0153 presence hash replaces it.
func TestAvatar(t *testing.T) {
	s := newStackWith(t, "sqlite", testenv.ProsodyOptions{ExtraConfig: vcardOnlyProsody})
	alice, alicePW := s.account(t, "alice")
	bob, bobPW := s.account(t, "bob")
	carol, carolPW := s.account(t, "carol")
	phone := s.peer(t, alice, alicePW, "phone")
	bobC := s.peer(t, bob, bobPW, "laptop")
	carolC := s.peer(t, carol, carolPW, "laptop")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Mutual presence subscriptions: PEP notifications need them.
	subscribe(ctx, t, phone, bobC)
	subscribe(ctx, t, phone, carolC)

	bobA, bobB, bad := testPNG(color.RGBA{200, 0, 0, 255}), testPNG(color.RGBA{0, 0, 200, 255}), testPNG(color.RGBA{0, 150, 0, 255})
	carolA, carolB := testPNG(color.RGBA{250, 200, 0, 255}), testPNG(color.RGBA{90, 0, 90, 255})
	publishAvatar(ctx, t, bobC, bobA, bobA)
	setVCardPhoto(ctx, t, carolC, carolA)

	u := s.matrixUser(t, "mxuser")
	mgmt := s.loginUser(ctx, t, u, alice, alicePW)

	t.Run("PublishedBeforeLogin", func(t *testing.T) {
		waitGhostAvatar(t, u, s.ghost(bob), bobA)
	})
	t.Run("VCardPhoto", func(t *testing.T) {
		waitGhostAvatar(t, u, s.ghost(carol), carolA)
	})

	// The portal exists before the next change.
	body := uniq("hello from bob")
	if err := bobC.SendChat(ctx, alice, "", "", body); err != nil {
		t.Fatal(err)
	}
	if _, err := u.FindRoomWith(ctx, s.ghost(bob), mgmt); err != nil {
		t.Fatalf("no portal for bob: %v", err)
	}

	t.Run("ReplacedAfterPortal", func(t *testing.T) {
		publishAvatar(ctx, t, bobC, bobB, bobB)
		waitGhostAvatar(t, u, s.ghost(bob), bobB)
	})
	t.Run("HashMismatchKeepsAvatar", func(t *testing.T) {
		// The data item is named after bobA's hash but holds other bytes.
		publishAvatar(ctx, t, bobC, bad, bobA)
		deadline := time.Now().Add(stepTimeout)
		for !strings.Contains(s.bridge.Log(), "does not match its SHA-1") {
			if time.Now().After(deadline) {
				t.Fatal("the bridge never refused the mismatched avatar")
			}
			time.Sleep(200 * time.Millisecond)
		}
		if got := ghostAvatar(t, u, s.ghost(bob)); !bytes.Equal(got, bobB) {
			t.Errorf("ghost avatar changed to %d bytes after a mismatched image, want bobB kept", len(got))
		}
	})
	t.Run("RemovedWithEmptyMetadata", func(t *testing.T) {
		// XEP-0084 §4.6: an empty <metadata/> takes the avatar down.
		if _, err := pubsub.PublishReconfigure(ctx, bobC.Session, avatar.NSMetadata, "current", avatar.Metadata{}.TokenReader(),
			pubsub.AccessModel(pubsub.AccessOpen)); err != nil {
			t.Fatal(err)
		}
		waitGhostAvatar(t, u, s.ghost(bob), nil)
	})
	t.Run("VCardUpdateHash", func(t *testing.T) {
		setVCardPhoto(ctx, t, carolC, carolB)
		raw := fmt.Sprintf(`<presence><x xmlns='%s'><photo>%s</photo></x></presence>`, vcardphoto.NSUpdate, avatar.ID(carolB))
		if err := carolC.SendRaw(ctx, raw); err != nil {
			t.Fatal(err)
		}
		waitGhostAvatar(t, u, s.ghost(carol), carolB)
	})
}

// subscribe sets up a mutual presence subscription between a and b with raw stanzas.
func subscribe(ctx context.Context, t *testing.T, a, b *harness.Peer) {
	t.Helper()
	ab, bb := a.JID.Bare(), b.JID.Bare()
	cur := a.PresenceCursor()
	for _, st := range []struct {
		from *harness.Peer
		to   jid.JID
		typ  string
	}{{a, bb, "subscribe"}, {b, ab, "subscribed"}, {b, ab, "subscribe"}, {a, bb, "subscribed"}} {
		if err := st.from.SendRaw(ctx, fmt.Sprintf(`<presence to='%s' type='%s'/>`, st.to, st.typ)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// a sees b online once the subscription is in place.
	if _, err := a.WaitPresence(ctx, cur, func(p harness.ReceivedPresence) bool {
		return p.Type == "" && strings.HasPrefix(p.From, bb.String()+"/")
	}); err != nil {
		t.Fatalf("no presence of %s after subscribing: %v", bb, err)
	}
}

// publishAvatar publishes img as the data item named after idOf's hash, then the metadata, both
// world-readable.
func publishAvatar(ctx context.Context, t *testing.T, p *harness.Peer, img, idOf []byte) {
	t.Helper()
	itemID := avatar.ID(idOf)
	open := pubsub.AccessModel(pubsub.AccessOpen)
	if _, err := pubsub.PublishReconfigure(ctx, p.Session, avatar.NSData, itemID, avatar.Data(img), open); err != nil {
		t.Fatal(err)
	}
	meta := avatar.Metadata{Infos: []avatar.Info{{ID: itemID, Type: "image/png", Bytes: len(img), Width: 8, Height: 8}}}
	if _, err := pubsub.PublishReconfigure(ctx, p.Session, avatar.NSMetadata, itemID, meta.TokenReader(), open); err != nil {
		t.Fatal(err)
	}
}

func setVCardPhoto(ctx context.Context, t *testing.T, p *harness.Peer, img []byte) {
	t.Helper()
	resp, err := p.Session.SendIQ(ctx, vcardphoto.SetIQ(vcardphoto.Photo{Type: "image/png", Data: img}))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()
	if err := pubsub.ParseResult(resp); err != nil {
		t.Fatalf("vCard set refused: %v", err)
	}
}

// testPNG is an 8x8 PNG of one colour.
func testPNG(c color.Color) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for y := range 8 {
		for x := range 8 {
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// ghostAvatar downloads the ghost's current Matrix avatar (nil when it has none).
func ghostAvatar(t *testing.T, u *harness.MatrixUser, ghost id.UserID) []byte {
	t.Helper()
	ctx, cancel := stepCtx()
	defer cancel()
	uri, err := u.Client.GetAvatarURL(ctx, ghost)
	if err != nil || uri.IsEmpty() {
		return nil
	}
	data, err := u.Client.DownloadBytes(ctx, uri)
	if err != nil {
		t.Fatalf("failed to download %s: %v", uri, err)
	}
	return data
}

// waitGhostAvatar polls the ghost's profile until its avatar_url is an mxc:// whose content is want
// (for want nil: until it has no avatar).
func waitGhostAvatar(t *testing.T, u *harness.MatrixUser, ghost id.UserID, want []byte) {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	var got []byte
	for time.Now().Before(deadline) {
		if got = ghostAvatar(t, u, ghost); bytes.Equal(got, want) {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	if want == nil {
		t.Fatalf("avatar of %s is still %d bytes, want none", ghost, len(got))
	}
	t.Fatalf("avatar of %s is %d bytes, want the published %d-byte PNG", ghost, len(got), len(want))
}

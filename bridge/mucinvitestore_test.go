package bridge

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/internal/credential"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucinvite"
)

// TestSavedInvite: an invitation kept for after a restart comes back as it
// was received; its password is never kept in the clear and opens only for
// the login and the room it was sealed for.
func TestSavedInvite(t *testing.T) {
	ks, err := credential.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	key, err := credential.ParseKey(ks)
	if err != nil {
		t.Fatal(err)
	}
	const login = "alice@example.org"
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		inv    mucinvite.Invite
		change func(*SavedInvite)
		want   mucinvite.Invite
		ok     bool
	}{
		{name: "direct with password",
			inv:  mucinvite.Invite{Kind: mucinvite.Direct, Room: jid.MustParse("room@muc.example.org"), From: jid.MustParse("bob@example.org/phone"), Reason: "come", Password: "s3cret"},
			want: mucinvite.Invite{Kind: mucinvite.Direct, Room: jid.MustParse("room@muc.example.org"), From: jid.MustParse("bob@example.org/phone"), Reason: "come", Password: "s3cret"}, ok: true},
		{name: "mediated without password",
			inv:  mucinvite.Invite{Kind: mucinvite.Mediated, Room: jid.MustParse("room@muc.example.org"), From: jid.MustParse("bob@example.org")},
			want: mucinvite.Invite{Kind: mucinvite.Mediated, Room: jid.MustParse("room@muc.example.org"), From: jid.MustParse("bob@example.org")}, ok: true},
		{name: "password moved to another room",
			inv:    mucinvite.Invite{Kind: mucinvite.Direct, Room: jid.MustParse("room@muc.example.org"), From: jid.MustParse("bob@example.org"), Password: "s3cret"},
			change: func(s *SavedInvite) { s.Room = "other@muc.example.org" },
			want:   mucinvite.Invite{Kind: mucinvite.Direct, Room: jid.MustParse("other@muc.example.org"), From: jid.MustParse("bob@example.org")}},
		{name: "a saved room's seal is not an invitation's",
			inv: mucinvite.Invite{Kind: mucinvite.Direct, Room: jid.MustParse("room@muc.example.org"), From: jid.MustParse("bob@example.org"), Password: "s3cret"},
			change: func(s *SavedInvite) {
				s.PasswordEnc, _ = key.Seal("s3cret", roomSealAD(login, s.Room))
			},
			want: mucinvite.Invite{Kind: mucinvite.Direct, Room: jid.MustParse("room@muc.example.org"), From: jid.MustParse("bob@example.org")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			saved, err := sealInvite(key, login, tc.inv, at)
			if err != nil {
				t.Fatal(err)
			}
			if tc.inv.Password != "" && (saved.PasswordEnc == "" || strings.Contains(saved.PasswordEnc, tc.inv.Password)) {
				t.Fatalf("password kept as %q", saved.PasswordEnc)
			}
			if tc.change != nil {
				tc.change(&saved)
			}
			got, err := openSavedInvite(key, login, saved)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok %v", err, tc.ok)
			}
			if !tc.ok && !errors.Is(err, credential.ErrTampered) {
				t.Errorf("err = %v, want ErrTampered", err)
			}
			if got.Kind != tc.want.Kind || !got.Room.Equal(tc.want.Room) || !got.From.Equal(tc.want.From) || got.Reason != tc.want.Reason || got.Password != tc.want.Password {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestKeepInvite: a new invitation to a room replaces the earlier one; past
// maxPendingInvites the oldest are dropped.
func TestKeepInvite(t *testing.T) {
	var kept []SavedInvite
	for i := range maxPendingInvites + 5 {
		kept = keepInvite(kept, SavedInvite{Room: fmt.Sprintf("r%d@muc.example.org", i)})
	}
	if len(kept) != maxPendingInvites || kept[0].Room != "r5@muc.example.org" {
		t.Fatalf("kept %d, oldest %q; want %d from r5", len(kept), kept[0].Room, maxPendingInvites)
	}
	kept = keepInvite(kept, SavedInvite{Room: "r10@muc.example.org", Reason: "again"})
	if len(kept) != maxPendingInvites || kept[len(kept)-1].Reason != "again" {
		t.Fatalf("the new invitation to r10 did not replace the old one: %d kept, last %+v", len(kept), kept[len(kept)-1])
	}
	n := 0
	for _, s := range kept {
		if s.Room == "r10@muc.example.org" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("r10 kept %d times", n)
	}
}

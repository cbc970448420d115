package bridge

import (
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/xmpp/reactions"
	"github.com/mxomemo/xmpp-bridge/xmpp/reply"
	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

func TestCollectBackfill(t *testing.T) {
	c := &Client{account: jid.MustParse("alice@example.org"), login: &bridgev2.UserLogin{}}
	// As the Router hands it over: classified, its archive query looked up.
	read := func(xml string) xmppclient.Inbound {
		in := xmppclient.Classify(tokens(t, xml))
		c.mam.Resolve(&in)
		return in
	}
	msg := `<message xmlns="jabber:client" from="bob@example.org/phone" to="alice@example.org" type="chat" id="m1"><body>old</body></message>`
	if c.collectBackfill(read(archiveResult("", "none", msg))) {
		t.Fatal("collected without a running backfill query")
	}
	bf := c.mam.AddBackfill()
	catchUp := c.mam.Add(xmppclient.QueryCatchUp)
	for _, tc := range []struct {
		name     string
		xml      string
		consumed bool
	}{
		{"backfill result", archiveResult("", bf, msg), true},
		{"catch-up result goes to the queue", archiveResult("", catchUp, msg), false},
		{"live message goes to the queue", msg, false},
		{"forged backfill result is dropped", archiveResult("mallory@example.org/x", bf, msg), true},
	} {
		if got := c.collectBackfill(read(tc.xml)); got != tc.consumed {
			t.Errorf("%s: consumed = %v, want %v", tc.name, got, tc.consumed)
		}
	}
	got := c.mam.Finish(bf)
	if len(got) != 1 || got[0].ArchiveID != "arch-7" {
		t.Fatalf("collected %+v, want the one genuine result", got)
	}
	if c.mam.Collecting() || c.mam.Lookup(bf).Mode != 0 {
		t.Error("query still known after finish")
	}
}

func TestArchiveQuery(t *testing.T) {
	bob := jid.MustParse("bob@example.org")
	ts := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	withID := &database.Message{Timestamp: ts, Metadata: &portal.MessageMetadata{StanzaID: "arch-3"}}
	noID := &database.Message{Timestamp: ts, Metadata: &portal.MessageMetadata{}}
	for _, tc := range []struct {
		name   string
		params bridgev2.FetchMessagesParams
		last   bool
		page   string
		start  time.Time
		end    time.Time
	}{
		{"new portal: newest page", bridgev2.FetchMessagesParams{Forward: true}, true, "", time.Time{}, time.Time{}},
		{"forward after anchor", bridgev2.FetchMessagesParams{Forward: true, AnchorMessage: withID}, false, "arch-3", time.Time{}, time.Time{}},
		{"forward after anchor without id", bridgev2.FetchMessagesParams{Forward: true, AnchorMessage: noID}, false, "", ts, time.Time{}},
		{"backward from cursor", bridgev2.FetchMessagesParams{Cursor: "arch-1", AnchorMessage: withID}, true, "arch-1", time.Time{}, time.Time{}},
		{"backward before anchor", bridgev2.FetchMessagesParams{AnchorMessage: withID}, true, "arch-3", time.Time{}, time.Time{}},
		{"backward before anchor without id", bridgev2.FetchMessagesParams{AnchorMessage: noID}, true, "", time.Time{}, ts},
	} {
		q := archiveQuery(bob, tc.params)
		if !q.With.Equal(bob) || q.Last != tc.last || q.PageID != tc.page || !q.Start.Equal(tc.start) || !q.End.Equal(tc.end) {
			t.Errorf("%s: got %+v", tc.name, q)
		}
	}
}

func TestFoldHistory(t *testing.T) {
	alice, bob := jid.MustParse("alice@example.org"), jid.MustParse("bob@example.org")
	msg := func(fromMe bool, id, body string) *incoming {
		return &incoming{Message: xmppclient.Message{Peer: bob, FromMe: fromMe, XMPPID: id, Body: body, Archived: true}}
	}
	correction := msg(false, "c1", "hello, corrected")
	correction.Replace = "m1"
	forgedCorrection := msg(true, "c2", "not yours")
	forgedCorrection.Replace = "m1"
	retraction := msg(true, "r1", "")
	retraction.Retract = "m2"
	react1 := msg(true, "x1", "")
	react1.Reactions = &reactions.Reactions{ID: "m1", Emojis: []string{"👍"}}
	react2 := msg(true, "x2", "")
	react2.Reactions = &reactions.Reactions{ID: "m1", Emojis: []string{"🎉", "❤"}}
	unknownCorrection := msg(false, "c3", "edit of something older")
	unknownCorrection.Replace = "older"
	replyMsg := msg(true, "m4", "answer")
	replyMsg.ReplyTo = &reply.Reply{ID: "m1"}
	entries := foldHistory([]*incoming{
		msg(false, "m1", "hello"),
		msg(true, "m2", "oops"),
		msg(true, "m3", "mine"),
		correction, forgedCorrection, retraction, react1, react2, unknownCorrection,
		msg(false, "m1", "hello"), // the same message twice in the archive
		replyMsg,
	}, alice)
	var got []string
	for _, e := range entries {
		got = append(got, string(e.ID)+"="+e.In.Body)
	}
	want := []string{
		"bob@example.org/bob@example.org/m1=hello, corrected",
		"bob@example.org/alice@example.org/m3=mine",
		"bob@example.org/alice@example.org/m4=answer",
	}
	if len(got) != len(want) {
		t.Fatalf("entries = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %q, want %q", i, got[i], want[i])
		}
	}
	if r := entries[0].Reactions; len(r) != 1 || len(r[0].Emojis) != 2 {
		t.Errorf("reactions to m1 = %+v, want alice's latest set only", r)
	}
	if entries[2].ReplyTo != entries[0].ID {
		t.Errorf("reply target = %q, want %q", entries[2].ReplyTo, entries[0].ID)
	}
}

// TestHistoryOMEMO: archived OMEMO messages are read from the inbox only; one the bridge's device
// can still decrypt is left to the live path with the ratchet untouched, one without a key for it
// becomes a notice.
func TestHistoryOMEMO(t *testing.T) {
	f := newInboxFixture(t)
	ctx := context.Background()
	history := func(st *stanzabuf.Stanza) (*incoming, bool) {
		t.Helper()
		in, err := parseIncoming(st, f.alice)
		if err != nil {
			t.Fatal(err)
		}
		in.Archived = true
		return in, f.c.historyOMEMO(ctx, in)
	}

	decrypted := f.stanza(t, "m1", f.encrypt(t, f.bobXC, "decrypted live"))
	in, err := f.receive(t, decrypted)
	wantBody(t, in, err, "decrypted live")
	if in, ok := history(decrypted); !ok || in.Body != "decrypted live" || in.OMEMO == nil || in.OMEMO.Failed {
		t.Errorf("decrypted message: backfill = %v, %q (%+v)", ok, in.Body, in.OMEMO)
	}

	pending := f.stanza(t, "m2", f.encrypt(t, f.bobXC, "not decrypted yet"))
	if in, ok := history(pending); ok {
		t.Errorf("message for our device backfilled as %q, want it left to the live path", in.Body)
	}
	in, err = f.receive(t, pending)
	wantBody(t, in, err, "not decrypted yet")

	notForUs := tokens(t, `<message xmlns="jabber:client" from="bob@localhost/phone" to="alice@localhost" type="chat" id="m3">`+
		`<encrypted xmlns="eu.siacs.conversations.axolotl"><header sid="4242"><key rid="31337">AAAAAAAA</key>`+
		`<iv>AAAAAAAAAAAAAAAA</iv></header><payload>AAAAAAAA</payload></encrypted><body>fallback</body></message>`)
	if in, ok := history(notForUs); !ok || in.Body != omemoHistoryNotice || in.OMEMO == nil || !in.OMEMO.Failed {
		t.Errorf("message for another device: backfill = %v, %q (%+v), want the notice", ok, in.Body, in.OMEMO)
	}

	// Heartbeats and key transports carry no message: the bridge's own (from alice's account, to
	// bob), and bob's to another device of alice, in either OMEMO version.
	for _, hb := range []string{
		`<message xmlns="jabber:client" from="alice@localhost/bridge" to="bob@localhost" type="chat" id="hb1">` +
			`<encrypted xmlns="eu.siacs.conversations.axolotl"><header sid="4242"><key rid="777">AAAAAAAA</key>` +
			`<iv>AAAAAAAAAAAAAAAA</iv></header></encrypted><store xmlns="urn:xmpp:hints"/></message>`,
		`<message xmlns="jabber:client" from="alice@localhost/bridge" to="bob@localhost" type="chat" id="hb2">` +
			`<encrypted xmlns="urn:xmpp:omemo:2"><header sid="4242"><keys jid="bob@localhost"><key rid="777">AAAAAAAA</key></keys>` +
			`</header></encrypted><store xmlns="urn:xmpp:hints"/></message>`,
		`<message xmlns="jabber:client" from="bob@localhost/phone" to="alice@localhost" type="chat" id="hb3">` +
			`<encrypted xmlns="urn:xmpp:omemo:2"><header sid="777"><keys jid="alice@localhost"><key rid="31337">AAAAAAAA</key></keys>` +
			`</header></encrypted><store xmlns="urn:xmpp:hints"/></message>`,
	} {
		if in, ok := history(tokens(t, hb)); ok {
			t.Errorf("OMEMO element without payload backfilled as %q: %s", in.Body, hb)
		}
		if in, err := f.receive(t, tokens(t, hb)); err != nil || in.Body != "" {
			t.Errorf("OMEMO element without payload caught up as %q (%v): %s", in.Body, err, hb)
		}
	}

	plain := tokens(t, `<message xmlns="jabber:client" from="bob@localhost/phone" to="alice@localhost" type="chat" id="m4"><body>plain</body></message>`)
	if in, ok := history(plain); !ok || in.Body != "plain" || in.OMEMO != nil {
		t.Errorf("plaintext message: backfill = %v, %q (%+v)", ok, in.Body, in.OMEMO)
	}
}

package xmppclient

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"mellium.im/xmpp"
	"mellium.im/xmpp/disco"
	discoinfo "mellium.im/xmpp/disco/info"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/bookmarks"
)

// Group chat bookmarks: XEP-0402 where the server has PEP, XEP-0048 private
// storage too where the server does not keep the two in sync (no
// urn:xmpp:bookmarks:1#compat on the account), so that clients that know
// only the older one see what the bridge writes and the other way round.

// BookmarksCompat reports whether the account's server keeps XEP-0048 and
// XEP-0402 bookmarks in sync. A failed disco counts as no.
func BookmarksCompat(ctx context.Context, s *xmpp.Session) bool {
	ctx, cancel := context.WithTimeout(ctx, IQTimeout)
	defer cancel()
	info, err := disco.GetInfo(ctx, "", s.LocalAddr().Bare(), s)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(info.Features, func(f discoinfo.Feature) bool { return f.Var == bookmarks.NSCompat })
}

// FetchBookmarks returns the account's bookmarks: the XEP-0402 ones, and
// (unless compat) the XEP-0048 ones of rooms without a XEP-0402 bookmark.
// What could be read is returned next to an error for what could not.
func FetchBookmarks(ctx context.Context, s *xmpp.Session, compat bool) ([]bookmarks.Conference, error) {
	ctx, cancel := context.WithTimeout(ctx, IQTimeout)
	defer cancel()
	out, err := bookmarks.Fetch(ctx, s)
	if compat {
		return out, err
	}
	st, legacyErr := bookmarks.FetchLegacy(ctx, s)
	for _, c := range st.Conferences {
		if !slices.ContainsFunc(out, func(o bookmarks.Conference) bool { return o.JID.Equal(c.JID) }) {
			out = append(out, c)
		}
	}
	return out, errors.Join(err, legacyErr)
}

// SetBookmark writes the bookmark of room with autojoin set as given,
// keeping what another client stored in it (name, extensions); nick is used
// for a new bookmark or one without a nick. Clearing autojoin of a room
// without a bookmark writes nothing. Without compat the XEP-0048
// storage is updated too (read, change, store).
func SetBookmark(ctx context.Context, s *xmpp.Session, room jid.JID, nick string, autojoin, compat bool) error {
	ctx, cancel := context.WithTimeout(ctx, IQTimeout)
	defer cancel()
	room = room.Bare()
	c := bookmarks.Conference{JID: room}
	existing, err := bookmarks.Fetch(ctx, s)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(existing, func(o bookmarks.Conference) bool { return o.JID.Equal(room) })
	if i >= 0 {
		c = existing[i]
	}
	// Publishing an unchanged bookmark would only wake the other clients,
	// and a room that was never bookmarked needs none to say "not autojoin".
	if (i < 0 && autojoin) || (i >= 0 && c.Autojoin != autojoin) {
		c.Autojoin = autojoin
		if c.Nick == "" {
			c.Nick = nick
		}
		if err := bookmarks.Publish(ctx, s, c); err != nil {
			return err
		}
	}
	if compat {
		return nil
	}
	st, err := bookmarks.FetchLegacy(ctx, s)
	if err != nil {
		return err
	}
	lc, ok := st.Get(room)
	if (ok && lc.Autojoin == autojoin) || (!ok && !autojoin) {
		return nil
	}
	if !ok {
		lc = c
	}
	lc.Autojoin = autojoin
	if lc.Nick == "" {
		lc.Nick = nick
	}
	st.Set(lc)
	if err := bookmarks.StoreLegacy(ctx, s, &st); err != nil {
		return fmt.Errorf("failed to update the XEP-0048 bookmark of %s: %w", room, err)
	}
	return nil
}

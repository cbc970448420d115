package xmppclient

import (
	"context"
	"encoding/xml"

	"github.com/rs/zerolog"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/roster"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/caps"
	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
	"github.com/mxomemo/xmpp-bridge/xmpp/vcardphoto"
)

// Router is where a stanza enters: the handler of one session's Serve
// loop. Messages and room presences are taken whole (mellium's mux would
// split them by child element), classified once (Classify) and queued in
// order; contacts' presences update the roster here; IQs go through the
// mux, which answers unknown ones with service-unavailable. It runs inside
// mellium's Serve loop, so nothing here (nor in its callbacks) may send on
// the session.
type Router struct {
	Rooms  *Rooms
	Roster *Roster
	// Queries are the login's archive queries: each result is looked up
	// as it arrives (queries.go).
	Queries *Queries
	// RosterPush is a roster push (RFC 6121 §2.1.6).
	RosterPush func(ver string, item roster.Item) error
	// AvatarHash is a contact's XEP-0153 avatar hash from its presence.
	AvatarHash func(from jid.JID, u vcardphoto.Update)
	// Presence is a contact's available or unavailable presence, read
	// (ParsePresence), for its aggregate (Presences).
	Presence func(from jid.JID, p Presence)
	// Intercept may take a classified stanza before it is queued (the
	// results of backfill queries, collected for their caller); it reports
	// whether it did.
	Intercept func(Inbound) bool
	// Queue puts a classified stanza on the login's ordered stream.
	Queue func(ctx context.Context, in Inbound)
}

// Handler is the Serve handler for one session.
func (r *Router) Handler(ctx context.Context) xmpp.Handler {
	log := zerolog.Ctx(ctx)
	iqs := mux.New(stanza.NSClient,
		roster.Handle(roster.Handler{Push: r.RosterPush}),
		ping.Handle(),
		caps.Handle(CapsNode, CapsInfo()),
	)
	return xmpp.HandlerFunc(func(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		switch {
		case start.Name.Local == "message" && stanza.Is(start.Name, stanza.NSClient):
			st, err := stanzabuf.Read(xmlstream.MultiReader(xmlstream.Token(*start), t))
			if err != nil {
				log.Warn().Err(err).Msg("Dropping unreadable message stanza")
				return nil
			}
			in := Classify(st)
			if r.Queries != nil {
				r.Queries.Resolve(&in)
			}
			if r.Intercept != nil && r.Intercept(in) {
				return nil
			}
			r.Queue(ctx, in)
			return nil
		case start.Name.Local == "presence" && stanza.Is(start.Name, stanza.NSClient):
			if !r.fromRoom(*start) {
				return r.presence(ctx, t, start)
			}
			// Occupant presences go through the queue, in order with the
			// room's messages.
			st, err := stanzabuf.Read(xmlstream.MultiReader(xmlstream.Token(*start), t))
			if err != nil {
				log.Warn().Err(err).Msg("Dropping unreadable group chat presence")
				return nil
			}
			r.Queue(ctx, Classify(st))
			return nil
		}
		return iqs.HandleXMPP(t, start)
	})
}

// fromRoom reports whether a stanza comes from one of the login's rooms.
func (r *Router) fromRoom(start xml.StartElement) bool {
	from := AttrValue(start, "from")
	if from == "" {
		return false
	}
	j, err := jid.Parse(from)
	return err == nil && r.Rooms.Known(j)
}

// presence tracks which contacts are online. Subscription requests are
// left to the user's other clients: approving them is a privacy decision.
func (r *Router) presence(ctx context.Context, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	p, err := stanza.NewPresence(*start)
	if err != nil {
		return nil
	}
	switch p.Type {
	case stanza.AvailablePresence:
		r.Roster.SetOnline(p.From, true)
		st, err := stanzabuf.Read(xmlstream.MultiReader(xmlstream.Token(*start), t))
		if err != nil {
			return nil
		}
		if u, ok, err := vcardphoto.ParseUpdate(st.Reader()); err == nil && ok && r.AvatarHash != nil {
			r.AvatarHash(p.From, u)
		}
		r.contactPresence(st)
	case stanza.UnavailablePresence:
		r.Roster.SetOnline(p.From, false)
		if st, err := stanzabuf.Read(xmlstream.MultiReader(xmlstream.Token(*start), t)); err == nil {
			r.contactPresence(st)
		}
	case stanza.SubscribePresence:
		zerolog.Ctx(ctx).Info().Stringer("from", p.From.Bare()).Msg("Contact asked to see our presence; answer it from an XMPP client")
	}
	return nil
}

// contactPresence hands a contact's presence, read, to r.Presence.
func (r *Router) contactPresence(st *stanzabuf.Stanza) {
	if r.Presence == nil {
		return
	}
	if from, p, ok, err := ParsePresence(st.Reader()); err == nil && ok {
		r.Presence(from, p)
	}
}

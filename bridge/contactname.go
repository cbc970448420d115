package bridge

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/puppet"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// Names of contacts that are not in the user's roster. The roster name wins whenever there is
// one (roster.go); otherwise the contact's own name is used: the XEP-0172 nick it sends with a
// message, or its PEP nick or vCard NICKNAME/FN looked up once per process, and only then the
// localpart. Without this, `start-chat carol@example.org` answered with an empty name.

// nickLookupTimeout bounds a lookup that a command (start-chat) waits for.
const nickLookupTimeout = 5 * time.Second

// nickState remembers the contacts whose name was looked up by this login in this process.
type nickState struct {
	mu     sync.Mutex
	looked map[string]bool
}

// first reports whether contact was not looked up yet, and marks it.
func (n *nickState) first(contact jid.JID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.looked == nil {
		n.looked = map[string]bool{}
	}
	k := contact.Bare().String()
	if n.looked[k] {
		return false
	}
	n.looked[k] = true
	return true
}

// lookupNick asks the contact's server for the name the contact gives itself; "" for none.
func (c *Client) lookupNick(ctx context.Context, contact jid.JID) string {
	s := c.currentSession()
	if s == nil || contact.Bare().Equal(c.account) {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, nickLookupTimeout)
	defer cancel()
	n, err := xmppclient.LookupNick(ctx, s, contact)
	if err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Stringer("contact", contact).Msg("No nickname for contact")
	}
	return n
}

// rosterless reports whether no roster (of this login, or another's as remembered in the
// ghost) names the contact, so that its own name may be used.
func (c *Client) rosterless(contact jid.JID, ghost *bridgev2.Ghost) bool {
	if _, ok := c.roster.Get(contact); ok {
		return false
	}
	meta, _ := ghost.Metadata.(*puppet.Metadata)
	return meta == nil || meta.RosterName == ""
}

// nickInfo is the ghost info that names a rosterless contact by its own name n.
func (c *Client) nickInfo(contact jid.JID, n string) *bridgev2.UserInfo {
	return puppet.NickInfo(c.main.Config.FormatDisplayname(puppet.Name(n, contact), contact.Bare().String()), n)
}

// applyNick names the ghost of a rosterless contact n (from a message's XEP-0172 nick or a
// lookup). Roster names are never replaced.
func (c *Client) applyNick(ctx context.Context, contact jid.JID, n string) {
	if n == "" || contact.Bare().Equal(c.account) {
		return
	}
	ghost, err := c.main.Bridge.GetGhostByID(ctx, puppet.UserID(contact))
	if err != nil || ghost == nil {
		zerolog.Ctx(ctx).Err(err).Stringer("contact", contact).Msg("Failed to get ghost to set its nickname")
		return
	}
	if !c.rosterless(contact, ghost) {
		return
	}
	if meta, ok := ghost.Metadata.(*puppet.Metadata); ok && meta.Nick == n && ghost.NameSet {
		return
	}
	ghost.UpdateInfo(ctx, c.nickInfo(contact, n))
}

// startNickLookup looks the contact's own name up in the background, once per process, for
// ghosts GetUserInfo names by localpart only (it must not wait on the network).
func (c *Client) startNickLookup(ctx context.Context, contact jid.JID) {
	if c.currentSession() == nil || !c.nicks.first(contact) {
		return
	}
	ctx = context.WithoutCancel(ctx)
	go func() {
		if n := c.lookupNick(ctx, contact); n != "" {
			c.applyNick(ctx, contact, n)
		}
	}()
}

// messageNick applies the XEP-0172 nick a contact's message carries.
func (c *Client) messageNick(ctx context.Context, in *incoming) {
	if in == nil || in.FromMe || in.Archived || in.Raw == nil {
		return
	}
	if n := in.Message.Nick(); n != "" {
		c.applyNick(ctx, in.Peer, n)
	}
}

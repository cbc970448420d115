package xmppclient

import (
	"context"
	"errors"
	"fmt"

	"mellium.im/xmpp"
	mcarbons "mellium.im/xmpp/carbons"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/roster"

	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucadmin"
	"github.com/mxomemo/xmpp-bridge/xmpp/nick"
)

// What one session is asked and sent, so that the connector makes no
// network call of its own.

// EnableCarbons asks the server for copies of the messages the account's
// other clients send and receive (XEP-0280).
func EnableCarbons(ctx context.Context, s *xmpp.Session) error {
	return mcarbons.Enable(ctx, s)
}

// FetchRoster loads the account's roster (RFC 6121).
func FetchRoster(ctx context.Context, s *xmpp.Session) ([]roster.Item, error) {
	iter := roster.Fetch(ctx, s)
	var items []roster.Item
	for iter.Next() {
		items = append(items, iter.Item())
	}
	err := iter.Err()
	_ = iter.Close()
	if err != nil {
		return nil, fmt.Errorf("failed to fetch roster: %w", err)
	}
	return items, nil
}

// ErrSend wraps the error of a stanza that was built but could not be
// written to the session (the connection is going down); any other error
// of SendMessage and SendSignal is about the stanza itself.
var ErrSend = errors.New("failed to write to the XMPP session")

// SendMessage sends out: in plaintext when enc is nil, else around the
// OMEMO result enc (Outgoing.Stanza).
func SendMessage(ctx context.Context, s *xmpp.Session, out *Outgoing, enc *omemoxmpp.Outgoing) error {
	r, err := out.Stanza(enc)
	if err != nil {
		return err
	}
	if err := s.Send(ctx, r); err != nil {
		return fmt.Errorf("%w: %w", ErrSend, err)
	}
	return nil
}

// SendSignal sends a bodyless message.
func SendSignal(ctx context.Context, s *xmpp.Session, sig Signal) error {
	r, err := sig.Stanza()
	if err != nil {
		return err
	}
	if err := s.Send(ctx, r); err != nil {
		return fmt.Errorf("%w: %w", ErrSend, err)
	}
	return nil
}

// LookupNick asks contact's server for the XEP-0172 nick the contact
// publishes; "" for none.
func LookupNick(ctx context.Context, s *xmpp.Session, contact jid.JID) (string, error) {
	return nick.Lookup(ctx, s, contact)
}

// SetRoomMembers makes members the room's members (XEP-0045 §9.3), as
// its owner.
func SetRoomMembers(ctx context.Context, s *xmpp.Session, room jid.JID, members ...jid.JID) error {
	return mucadmin.SetAffiliations(ctx, s, room, mucadmin.Member, members...)
}

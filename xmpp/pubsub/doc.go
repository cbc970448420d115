// Package pubsub implements the parts of XEP-0060: Publish-Subscribe and
// XEP-0163: Personal Eventing Protocol that the bridge needs and
// mellium.im/xmpp/pubsub lacks or gets wrong:
//
//   - publishing with XEP-0223 publish-options (a data form of FORM_TYPE
//     http://jabber.org/protocol/pubsub#publish-options), which OMEMO needs
//     to make device lists and bundles world-readable;
//   - errors that keep the pubsub#errors condition, so that
//     precondition-not-met (node exists with another configuration) can be
//     detected with errors.Is(err, ErrPreconditionNotMet): mellium's
//     stanza.Error drops application conditions;
//   - configuring a node with just the fields to change (owner <configure/>
//     with a submitted node_config form);
//   - retrieving all items, or items by id, of a node of any JID (a
//     contact's PEP), buffered so they can be decoded more than once;
//   - parsing <event/> notifications (items and retractions) in messages;
//   - retracting an item of a node of any JID.
//
// Each operation is an IQ builder (…IQ, returns the whole stanza for
// Session.SendIQ), a response parser (Parse…, reads what SendIQ returned) and
// a small function that does both on a *xmpp.Session.
// Security: a PEP notification's from is the only thing that says whose
// node it is; callers must check it (Event.From) against the contact before
// trusting an event.
package pubsub // import "github.com/mxomemo/xmpp-bridge/xmpp/pubsub"

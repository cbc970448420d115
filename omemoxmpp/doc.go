// Package omemoxmpp carries the bridge's OMEMO engine (package omemo) over
// XMPP: it is the networking layer between an omemo.Manager and a mellium
// session, for both OMEMO 0.3 (eu.siacs.conversations.axolotl) and OMEMO 2
// (urn:xmpp:omemo:2).
//
// It owns:
//
//   - announcing our device: bundles and device lists published on PEP with
//     access_model=open (the node is reconfigured on precondition-not-met),
//     bundle first, other devices kept ([Client.Announce], [Client.Republish]);
//   - discovery: fetching device lists and bundles of any JID, and turning
//     PEP device-list notifications into stored updates
//     ([Client.FetchDevices], [ParseDeviceListEvent], [Client.HandleDeviceListEvent]);
//   - messages: choosing the recipient devices (the contact's and our own
//     other devices, OMEMO 2 where a device speaks both), fetching missing
//     bundles, encrypting ([Client.Encrypt]), building the stanza with its
//     EME, store hint and plaintext fallback ([BuildMessage]), and decrypting
//     a received stanza into body text plus what the caller must do next
//     ([Client.Decrypt]).
//
// It never falls back to plaintext: when no trusted device of the contact can
// be encrypted for, Encrypt fails with ErrNoTrustedDevices (or ErrNoDevices).
//
// The caller (the bridge) owns the session, the mux, carbons and caps; it
// advertises [NotifyFeatures] in its disco#info so the server pushes device
// lists. This package imports omemo, our xmpp/* stanza packages and mellium,
// and must never import the bridge.
//
// # Use in the bridge
//
// Per login, once the session is served (pubsub needs responses):
//
//	store := omemostore.New(db, loginID)
//	m := omemo.NewManager(store, bareJID, omemo.Options{})
//	err := m.Setup(ctx)
//	c, err := omemoxmpp.NewSession(m, store, session, omemoxmpp.Options{Label: "Matrix bridge"})
//	err = c.Announce(ctx) // bundles, then our id in both device lists
//
// Caps: append NotifyFeatures to the caps.Info features before the first
// presence. PEP: for headline and normal messages with a pubsub#event
// child call c.HandleDeviceListEvent(ctx, r) and ignore ErrNotDeviceList.
//
// Received chat messages (and carbons' Inner()) with an <encrypted/> child
// of either namespace: msg, err := c.DecryptStanza(ctx, r); for a MUC,
// rcv, err := FindEncrypted(r) and c.Decrypt(ctx, occupantRealJID, rcv).
// A message with both elements reaches a mux handler registered for both
// names twice: register one, or dedupe by stanza id. Then:
//
//   - msg.PreKeyConsumed: c.Republish(ctx);
//   - msg.SendHeartbeat: out, err := c.EncryptEmpty(ctx, sender, msg.Sender.Device, msg.Version),
//     then send BuildMessage(stanza.Message{To: sender}, out);
//   - msg.Empty or msg.Body == "": no chat message;
//   - !msg.Trusted: flag the message;
//   - errors: omemo.ErrNotForThisDevice, omemo.ErrBadMAC, omemo.ErrMalformed,
//     omemo.ErrEnvelope, omemo.ErrNoSession become notices; omemo.ErrDuplicate
//     is dropped silently; on repeated ErrNoSession/ErrBadMAC from a device,
//     c.ResetSession (rate-limited) and send the result.
//
// Sending in an encrypted portal: out, err := c.Encrypt(ctx, contact, body)
// (c.EncryptGroup for rooms); on error send nothing and tell the user
// (ErrNoDevices, *DeviceError with ErrNoTrustedDevices); otherwise
// r, err := BuildMessage(stanza.Message{To: contact, ID: id}, out, sid.OriginID{ID: id}.TokenReader())
// and session.Send(ctx, r). out.Errors lists devices that were skipped.
//
// Whether a chat should be encrypted: c.FetchDevices(ctx, contact) is
// non-empty. Daily: m.Setup(ctx) (signed prekey rotation), then c.Announce.
package omemoxmpp // import "github.com/mxomemo/xmpp-bridge/omemoxmpp"

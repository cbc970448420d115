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
package omemoxmpp // import "github.com/mxomemo/xmpp-bridge/omemoxmpp"

// Package caps implements XEP-0115: Entity Capabilities for the bridge's
// own client identity.
//
// A client advertises a hash (ver) of its disco#info in a <c/> element in
// every presence; peers that do not know the hash ask disco#info for
// node#ver and cache the answer. PEP (XEP-0163) uses the cached features to
// decide whom to notify: a feature "<node>+notify" (see Notify) makes the
// server push that node's items, which is how the bridge learns about OMEMO
// device lists without polling.
//
// mellium.im/xmpp/disco has a Caps element and a hash, but its hash does not
// sort extended-info forms by FORM_TYPE and reuses one hash.Hash across
// calls without resetting it, so a second answer is wrong, and its handler
// builds the answer from every registered mux handler. Here Info is a plain
// value: Ver computes the XEP-0115 §5 hash (SHA-1) and rejects the
// duplicates §5.4 forbids, Caps gives the presence element, and Handle
// answers disco#info for "" and node#ver from the same value, so the two
// can never disagree. ParseInfo and Info.Verify check a peer's advertised
// hash against its disco#info before the answer is cached.
package caps // import "github.com/mxomemo/xmpp-bridge/xmpp/caps"

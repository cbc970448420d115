// Package xmpptap is a BENCHMARK-ONLY XMPP tap: a TCP proxy between the
// bridge and a real XMPP server (Prosody) that relays the whole client
// stream (TLS, SASL, binding, roster, PEP, MUC, IQs: all the server's), and
// during a burst lets a benchmark put pre-built message stanzas straight
// into the bridge's inbound stream (Inject) and take the bridge's outgoing
// message stanzas out of its outbound stream (Capture) instead of
// forwarding them. The burst then measures the bridge's own work without
// the server's per-message CPU on the same cores (e2e BenchmarkSinkThroughput,
// the burst-tap rows; docs/scaling.md).
//
// Both sides speak direct TLS (XEP-0368): the bridge to the tap, whose
// self-signed certificate the bridge accepts through insecure_tls_hosts,
// and the tap to the server's direct TLS port. Inside TLS the tap cuts
// each direction into top-level elements (framer.go) so that injected
// stanzas go in between whole elements, and translates XEP-0198's
// acknowledgement counters (counters.go): injected stanzas raise the
// bridge's <a h/> above what the server sent, swallowed ones leave the
// server's <a h/> below what the bridge sent; each side sees its own counts.
//
// Never imported by the bridge: it lives under e2e/internal and imports
// nothing of ours (its integration test drives xmpp/conn and xmpp/sm, the
// bridge's connection stack, through it to a real Prosody).
package xmpptap

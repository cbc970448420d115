// Package omemo is the bridge's OMEMO engine: X3DH key agreement and the
// Double Ratchet, with two thin wire profiles on one core:
//
//   - V03: OMEMO 0.3, namespace eu.siacs.conversations.axolotl ("oldmemo"),
//     libsignal framing (version byte 0x33, 8-byte MAC), Curve25519 identity
//     keys with XEdDSA-compatible signatures, AES-128-GCM payload (12-byte
//     IV sent, 12 or 16 accepted).
//   - V2: OMEMO 2, namespace urn:xmpp:omemo:2 ("twomemo"), 16-byte MAC,
//     Ed25519 identity keys, AES-256-CBC+HMAC payload carrying an XEP-0420
//     <envelope/> (see [BuildEnvelope], [ParseEnvelope]).
//
// The package owns key generation, sessions, wire formats (protobuf and XML
// elements for bundles, device lists and <encrypted/>), and trust decisions.
// It does no networking and imports nothing else of the bridge: the caller
// fetches bundles and device lists over PEP, hands them in, and sends what
// comes out.
//
// # Devices and keys
//
// One identity key pair per device serves both versions, as in python-omemo:
// a 32-byte Ed25519 seed whose Ed25519 public key is published for V2 and
// whose Curve25519 (Montgomery) form is published for V03. The V03 signed
// prekey signature carries the Ed25519 sign bit in sig[63], so peers that
// speak both versions (python-omemo) see the same identity in both. A device has a
// random non-zero 31-bit device id, 100 one-time prekeys (refilled after use)
// and a signed prekey that [Manager.Setup] rotates when it is older than
// [Options.SignedPreKeyRotation], keeping the previous one for
// [Options.SignedPreKeyGrace] so late key exchanges still work. Key ids are
// stored as reserved before their keys, so maintenance killed half way
// never gives a published key's id to another key.
//
// Public keys in [Bundle] and [Encrypted] values are raw 32-byte keys; the
// 0x05 type prefix of the V03 wire form is added and stripped by the XML
// codec.
//
// # Messages
//
// [Manager.Encrypt] encrypts one payload once and its key for every recipient
// device, starting sessions from bundles where the caller passes one.
// [Manager.Decrypt] decrypts one <encrypted/> element addressed to our
// device. Decryption is all-or-nothing: the new session state is computed in
// memory and written to the [Store] only after the message authenticated, so
// a caller whose Store joins a database transaction carried in the context
// commits ratchet state and its own work together.
//
// For V2 the plaintext given to Encrypt and returned by Decrypt is the whole
// SCE envelope; use [BuildEnvelope] and [ParseEnvelope] (which checks from).
//
// # Storage
//
// [Store] is narrow and context-first and holds only bytes, integers and
// strings, so a SQL implementation lives outside this package.
// [MemoryStore] is for tests. A Store may also implement [SessionMatcher]:
// the Manager then checks that the record it last wrote is still the
// stored one without having it copied out (MemoryStore does, and overwrites
// records it never handed out in place).
//
// # Trust
//
// Trust is kept per (JID, device, identity key): undecided, trusted, verified
// or distrusted. With [PolicyBTBV] (blind trust before verification) a newly
// seen identity is trusted unless its JID already has a verified device;
// with [PolicyManual] it stays undecided. Encrypt skips devices that are not
// trusted (ErrUntrusted per device); Decrypt always decrypts and reports the
// sender's trust so the caller can flag the message.
package omemo

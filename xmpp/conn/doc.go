// Package conn opens an authenticated client-to-server XMPP session for one
// account: it finds the server (DNS SRV, or an explicit host and port),
// secures the stream (STARTTLS or direct TLS, never plaintext), authenticates
// with SASL SCRAM (channel-bound -PLUS variants where the channel binding is
// known to work: see channelbinding.go for the choice, the fallback after a
// refused binding and its downgrade risk) and binds a resource.
//
// Failures are classified into a few sentinel errors (ErrBadJID,
// ErrUnreachable, ErrNoTLS, ErrCertificate, ErrWrongPassword, ErrAuthFailed)
// so that the login flow can tell the user what went wrong and the reconnect
// loop can tell permanent failures from transient ones.
//
// It imports only mellium and nothing else of ours.
package conn // import "github.com/mxomemo/xmpp-bridge/xmpp/conn"

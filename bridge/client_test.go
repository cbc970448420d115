package bridge

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	xconn "github.com/mxomemo/xmpp-bridge/xmpp/conn"
)

func TestLoginErrors(t *testing.T) {
	account := jid.MustParse("alice@example.org")
	for _, tc := range []struct {
		err      error
		code     string
		contains string
	}{
		{fmt.Errorf("%w (not-authorized)", xconn.ErrWrongPassword), "xmpp-wrong-password", "Wrong password for alice@example.org"},
		{fmt.Errorf("%w: %w", xconn.ErrUnreachable, errors.New("dial tcp: connection refused")), "xmpp-unreachable", "connection refused"},
		{fmt.Errorf("%w: x", xconn.ErrNoTLS), "xmpp-no-tls", "does not offer TLS"},
		{fmt.Errorf("%w: %w", xconn.ErrCertificate, errors.New("x509: unknown authority")), "xmpp-bad-certificate", "self-signed"},
		{fmt.Errorf("%w: x", xconn.ErrBadJID), "xmpp-bad-jid", "not a valid XMPP address"},
		{fmt.Errorf("%w: account-disabled", xconn.ErrAuthFailed), "xmpp-auth-failed", "refused the login"},
		{errors.New("weird"), "xmpp-connection-failed", "weird"},
	} {
		if got := string(stateErrorCode(tc.err)); got != tc.code {
			t.Errorf("stateErrorCode(%v) = %q, want %q", tc.err, got, tc.code)
		}
		msg := loginError(tc.err, account).Error()
		if !strings.Contains(msg, tc.contains) {
			t.Errorf("loginError(%v) = %q, want it to contain %q", tc.err, msg, tc.contains)
		}
		if strings.Contains(msg, "conn: ") {
			t.Errorf("loginError(%v) = %q leaks the package prefix", tc.err, msg)
		}
	}
}

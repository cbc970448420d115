package bridge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/status"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/puppet"
	xconn "github.com/mxomemo/xmpp-bridge/xmpp/conn"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// LoginFlowPassword is the only login flow: JID and password.
const LoginFlowPassword = "password"

// Login input field IDs.
const (
	fieldJID          = "jid"
	fieldPassword     = "password"
	fieldServer       = "server"
	fieldInsecureHost = "insecure_tls_host"
)

// GetLoginFlows implements bridgev2.NetworkConnector.
func (xc *Connector) GetLoginFlows() []bridgev2.LoginFlow {
	return []bridgev2.LoginFlow{{
		Name:        "Password",
		Description: "Log in with your XMPP address (JID) and password",
		ID:          LoginFlowPassword,
	}}
}

// CreateLogin implements bridgev2.NetworkConnector.
func (xc *Connector) CreateLogin(ctx context.Context, user *bridgev2.User, flowID string) (bridgev2.LoginProcess, error) {
	if flowID != LoginFlowPassword {
		return nil, fmt.Errorf("unknown login flow %q", flowID)
	}
	return &passwordLogin{main: xc, user: user}, nil
}

type passwordLogin struct {
	main *Connector
	user *bridgev2.User
}

var _ bridgev2.LoginProcessUserInput = (*passwordLogin)(nil)

func noneValue(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "-", "no", "none", "auto":
		return true
	}
	return false
}

// Start implements bridgev2.LoginProcess.
func (pl *passwordLogin) Start(ctx context.Context) (*bridgev2.LoginStep, error) {
	return &bridgev2.LoginStep{
		Type:   bridgev2.LoginStepTypeUserInput,
		StepID: "net.mxomemo.xmpp.login.password",
		Instructions: "Enter your XMPP account details. The password is stored by the bridge so that it can reconnect." +
			pl.main.passwordRoomWarning(ctx, pl.user),
		UserInputParams: &bridgev2.LoginUserInputParams{
			Fields: []bridgev2.LoginInputDataField{{
				Type:        bridgev2.LoginInputFieldTypeUsername,
				ID:          fieldJID,
				Name:        "XMPP address (JID)",
				Description: "For example alice@example.org",
				Validate: func(s string) (string, error) {
					j, err := xconn.ParseJID(s)
					if err != nil {
						return "", errors.New("expected an address like alice@example.org")
					}
					return j.String(), nil
				},
			}, {
				Type: bridgev2.LoginInputFieldTypePassword,
				ID:   fieldPassword,
				Name: "password",
			}, {
				Type:        bridgev2.LoginInputFieldTypeDomain,
				ID:          fieldServer,
				Name:        "server (optional)",
				Description: "`auto` to find the server through DNS, or host[:port] (`tls://host:port` for direct TLS)",
				Validate: func(s string) (string, error) {
					if noneValue(s) {
						return "", nil
					}
					if _, _, _, err := xconn.ParseServer(s); err != nil {
						return "", err
					}
					return strings.TrimSpace(s), nil
				},
			}, {
				Type:        bridgev2.LoginInputFieldTypeDomain,
				ID:          fieldInsecureHost,
				Name:        "self-signed certificate host (optional)",
				Description: "`no` to require a valid certificate. Only if your server uses a self-signed certificate: type its host name to accept that certificate for this host",
				Validate: func(s string) (string, error) {
					if noneValue(s) {
						return "", nil
					}
					s = strings.TrimSpace(s)
					if strings.ContainsAny(s, " /:@*") {
						return "", errors.New("expected a plain host name")
					}
					return strings.ToLower(s), nil
				},
			}},
		},
	}, nil
}

// errInsecureHostElsewhere refuses a self-signed host that is neither the
// account's domain nor the server named at login: it would otherwise
// switch off certificate checks for whatever else the name reaches.
var errInsecureHostElsewhere = errors.New("the self-signed certificate host must be your JID's domain or the server you named")

// loginInsecureHostOK reports whether a login's self-signed host h may
// apply: it names the XMPP server of that login (its JID domain or the
// configured server host), and nothing else.
func loginInsecureHostOK(h string, account jid.JID, server string) bool {
	if h == "" {
		return false
	}
	return strings.EqualFold(h, account.Domainpart()) || (server != "" && strings.EqualFold(h, server))
}

// Cancel implements bridgev2.LoginProcess.
func (pl *passwordLogin) Cancel() {}

// SubmitUserInput implements bridgev2.LoginProcessUserInput: it logs in for
// real before saving anything, so that a wrong password or an unreachable
// server is reported now, in the bot's reply.
func (pl *passwordLogin) SubmitUserInput(ctx context.Context, input map[string]string) (*bridgev2.LoginStep, error) {
	account, err := xconn.ParseJID(input[fieldJID])
	if err != nil {
		return nil, loginError(err, jid.JID{})
	}
	password := input[fieldPassword]
	// bridgev2 has tried to redact the password message (and only logged a failure).
	pl.main.checkPasswordRedacted(ctx, pl.user, password)
	if password == "" {
		return nil, bridgev2.RespError{ErrCode: "M_INVALID_PARAM", Err: "The password must not be empty.", StatusCode: http.StatusBadRequest}
	}
	loginID := puppet.LoginID(account)
	meta := &UserLoginMetadata{
		JID:             account.String(),
		InsecureTLSHost: input[fieldInsecureHost],
	}
	if server := input[fieldServer]; !noneValue(server) {
		meta.Host, meta.Port, meta.DirectTLS, err = xconn.ParseServer(server)
		if err != nil {
			return nil, bridgev2.RespError{ErrCode: "M_INVALID_PARAM", Err: err.Error(), StatusCode: http.StatusBadRequest}
		}
	}
	// Only the sealed password is ever stored, bound to where it may be
	// sent (credentials.go).
	if meta.PasswordEnc, err = pl.main.sealPassword(password, loginID, meta); err != nil {
		return nil, fmt.Errorf("failed to encrypt the password: %w", err)
	}
	if meta.InsecureTLSHost != "" && !loginInsecureHostOK(meta.InsecureTLSHost, account, meta.Host) {
		return nil, bridgev2.RespError{ErrCode: "M_INVALID_PARAM", Err: errInsecureHostElsewhere.Error(), StatusCode: http.StatusBadRequest}
	}
	log := zerolog.Ctx(ctx).With().Str("action", "xmpp login").Stringer("jid", account).Logger()
	// Taken before the bind, so that the first catch-up cannot start after
	// a message that reached the server before the login's presence. The
	// archive's times have whole seconds (history.Query's start, and some
	// servers' storage), hence the second subtracted.
	meta.ArchiveSince = time.Now().UTC().Truncate(time.Second).Add(-time.Second)
	probe := &Client{main: pl.main, account: account, password: password, login: &bridgev2.UserLogin{UserLogin: &database.UserLogin{Metadata: meta}}}
	session, err := xmppclient.Probe(ctx, probe.connConfig())
	if err != nil {
		log.Info().Err(err).Msg("XMPP login failed")
		return nil, loginError(err, account)
	}
	// A login for the same account replaces the running client; another
	// Matrix user's login is forgotten with its OMEMO device (takeover.go).
	existing, err := pl.main.Bridge.GetExistingUserLoginByID(ctx, loginID)
	if err != nil {
		xmppclient.CloseProbe(session)
		return nil, fmt.Errorf("failed to look up existing login: %w", err)
	}
	if err := pl.main.forgetOtherUsersLogin(ctx, existing, loginID, pl.user.MXID); err != nil {
		xmppclient.CloseProbe(session)
		return nil, err
	}
	if existing != nil && existing.Client != nil {
		existing.Client.Disconnect()
	}
	ul, err := newLogin(ctx, pl.main.Bridge, pl.user, &database.UserLogin{
		ID:         loginID,
		RemoteName: account.String(),
		RemoteProfile: status.RemoteProfile{
			Username: account.String(),
		},
		Metadata: meta,
	}, &bridgev2.NewLoginParams{DeleteOnConflict: true})
	if err != nil {
		xmppclient.CloseProbe(session)
		return nil, fmt.Errorf("failed to save login: %w", err)
	}
	client := ul.Client.(*Client)
	client.conn.HandOff(session)
	client.Connect(client.backgroundCtx())
	log.Info().Msg("XMPP login succeeded")
	return &bridgev2.LoginStep{
		Type:         bridgev2.LoginStepTypeComplete,
		StepID:       "net.mxomemo.xmpp.login.complete",
		Instructions: fmt.Sprintf("Successfully logged in as %s", account),
		CompleteParams: &bridgev2.LoginCompleteParams{
			UserLoginID: ul.ID,
			UserLogin:   ul,
		},
	}, nil
}

// loginError turns a classified connection error into the text the bot
// replies with.
func loginError(err error, account jid.JID) error {
	code := "NET.MXOMEMO.XMPP." + strings.ToUpper(strings.ReplaceAll(string(stateErrorCode(err)), "-", "_"))
	statusCode := http.StatusBadRequest
	switch {
	case errors.Is(err, xconn.ErrWrongPassword):
		statusCode = http.StatusForbidden
	case errors.Is(err, xconn.ErrUnreachable):
		statusCode = http.StatusBadGateway
	}
	return bridgev2.RespError{ErrCode: code, Err: userMessage(err, account), StatusCode: statusCode}.WithInternalError(err)
}

// stateErrorCode names the failure for bridge states and login errors.
func stateErrorCode(err error) status.BridgeStateErrorCode {
	switch {
	case errors.Is(err, xconn.ErrBadJID):
		return "xmpp-bad-jid"
	case errors.Is(err, xconn.ErrWrongPassword):
		return "xmpp-wrong-password"
	case errors.Is(err, xconn.ErrAuthFailed):
		return "xmpp-auth-failed"
	case errors.Is(err, xconn.ErrUnreachable):
		return "xmpp-unreachable"
	case errors.Is(err, xconn.ErrNoTLS):
		return "xmpp-no-tls"
	case errors.Is(err, xconn.ErrCertificate):
		return "xmpp-bad-certificate"
	default:
		return "xmpp-connection-failed"
	}
}

// userMessage explains a connection failure to the user, without secrets.
func userMessage(err error, account jid.JID) string {
	domain := account.Domainpart()
	if domain == "" {
		domain = "your server"
	}
	switch {
	case errors.Is(err, xconn.ErrBadJID):
		return "That is not a valid XMPP address. Enter it as user@example.org."
	case errors.Is(err, xconn.ErrWrongPassword):
		return fmt.Sprintf("Wrong password for %s (or the account does not exist).", account)
	case errors.Is(err, xconn.ErrAuthFailed):
		return fmt.Sprintf("%s refused the login: %s", domain, unwrapDetail(err))
	case errors.Is(err, xconn.ErrUnreachable):
		return fmt.Sprintf("Could not reach the XMPP server of %s: %s. Check the address, or give the server's host and port.", domain, unwrapDetail(err))
	case errors.Is(err, xconn.ErrNoTLS):
		return fmt.Sprintf("The XMPP server of %s does not offer TLS. The bridge never sends a password over an unencrypted connection.", domain)
	case errors.Is(err, xconn.ErrCertificate):
		return fmt.Sprintf("The TLS certificate of the XMPP server of %s is not trusted (%s). If it is your own server with a self-signed certificate, name its host in the last login step.", domain, unwrapDetail(err))
	default:
		return fmt.Sprintf("Could not connect to the XMPP server of %s: %s", domain, unwrapDetail(err))
	}
}

// unwrapDetail is the underlying cause of a classified error, for messages
// that already say which class it is.
func unwrapDetail(err error) string {
	msg := err.Error()
	for _, sentinel := range []error{xconn.ErrBadJID, xconn.ErrUnreachable, xconn.ErrNoTLS, xconn.ErrCertificate, xconn.ErrWrongPassword, xconn.ErrAuthFailed, xconn.ErrStream} {
		if rest, ok := strings.CutPrefix(msg, sentinel.Error()); ok {
			rest = strings.TrimPrefix(rest, ": ")
			rest = strings.TrimSuffix(strings.TrimPrefix(rest, " ("), ")")
			if rest == "" {
				return sentinel.Error()
			}
			return rest
		}
	}
	return msg
}

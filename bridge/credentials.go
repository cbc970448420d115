package bridge

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/status"

	"github.com/mxomemo/xmpp-bridge/internal/credential"
)

// sealAD is what a sealed password is bound to: the login, and where the
// password is sent (server host, port, direct TLS, the self-signed host).
// Someone who can write the database but does not have the key cannot
// point a login's stored password at a server of theirs: the seal no
// longer opens.
func sealAD(loginID networkid.UserLoginID, meta *UserLoginMetadata) string {
	return strings.Join([]string{string(loginID), "host=" + strings.ToLower(meta.Host),
		"port=" + strconv.Itoa(int(meta.Port)), "direct_tls=" + strconv.FormatBool(meta.DirectTLS),
		"insecure_host=" + strings.ToLower(meta.InsecureTLSHost)}, "\x00")
}

// sealPassword encrypts a login's password for its metadata.
func (xc *Connector) sealPassword(password string, loginID networkid.UserLoginID, meta *UserLoginMetadata) (string, error) {
	return xc.Config.credentialKey.Seal(password, sealAD(loginID, meta))
}

// unsealPassword reads the login's password into c.password, or the reason
// it cannot into c.credErr (Connect then reports it as bad credentials). A
// plaintext password from before sealing is sealed and the row saved at
// once, so that it leaves the database; the sealed one is left alone when
// it cannot be opened, so that restoring the right key brings it back.
func (c *Client) unsealPassword(ctx context.Context) {
	log := zerolog.Ctx(ctx).With().Str("component", "credentials").Logger()
	meta := c.meta()
	password, reseal, err := openPassword(c.main.Config.credentialKey, c.login.ID, meta)
	if err != nil {
		// The error names the kind of failure only, never key or password.
		log.Error().Err(err).Msg("Cannot read the stored XMPP password")
		c.credErr = err
		c.badCredentials.Store(true)
		return
	}
	c.password = password
	if !reseal {
		return
	}
	sealed, err := c.main.sealPassword(password, c.login.ID, meta)
	if err != nil {
		log.Warn().Err(err).Msg("Cannot encrypt the plaintext XMPP password of an old login, leaving it as it is")
		return
	}
	c.metaMu.Lock()
	meta.PasswordEnc, meta.Password = sealed, ""
	err = c.login.Save(ctx)
	c.metaMu.Unlock()
	if err != nil {
		// The metadata in memory is sealed already: the next save writes it.
		log.Warn().Err(err).Msg("Failed to save the encrypted XMPP password; the plaintext stays until the login is saved again")
		return
	}
	log.Info().Msg("Encrypted the plaintext XMPP password of an old login")
}

// openPassword reads the password of a login's metadata; reseal says it
// must be sealed again (a plaintext row, or a seal of an older version that
// bound the login ID only, accepted this once).
func openPassword(key *credential.Key, loginID networkid.UserLoginID, meta *UserLoginMetadata) (password string, reseal bool, err error) {
	password, reseal, err = credential.Password(key, meta.PasswordEnc, meta.Password, sealAD(loginID, meta))
	if errors.Is(err, credential.ErrTampered) {
		if p, lerr := key.Open(meta.PasswordEnc, string(loginID)); lerr == nil {
			return p, true, nil
		}
	}
	return password, reseal, err
}

// credentialState is the bridge state of a login whose password cannot be
// read.
func credentialState(err error) status.BridgeState {
	st := status.BridgeState{StateEvent: status.StateBadCredentials, Error: "xmpp-credential-unreadable"}
	switch {
	case errors.Is(err, credential.ErrWrongKey), errors.Is(err, credential.ErrNoKey):
		st.Error = "xmpp-credential-key-mismatch"
		st.Message = "The credential key in the config does not match the one the password was stored with; log in again or restore the key."
	case errors.Is(err, credential.ErrNoPassword):
		st.Message = "The login has no stored password, please log in again."
	default:
		st.Message = "The stored password cannot be decrypted (it was altered or belongs to another login); log in again."
	}
	return st
}

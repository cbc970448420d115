package bridge

import (
	"time"

	"maunium.net/go/mautrix/bridgev2/database"

	"github.com/mxomemo/xmpp-bridge/portal"
	"github.com/mxomemo/xmpp-bridge/puppet"
)

// UserLoginMetadata is what a login needs to reconnect after a restart.
// The password is stored because SCRAM needs it on every connection; it is
// sealed with the config's credential_key (credentials.go) and never logged.
type UserLoginMetadata struct {
	JID string `json:"jid"`
	// PasswordEnc is the sealed password (internal/credential), tied to
	// the login ID.
	PasswordEnc string `json:"password_enc,omitempty"`
	// Password is the plaintext of rows from before passwords were sealed;
	// loading such a row seals it and saves the row without it.
	Password string `json:"password,omitempty"`
	// Host and Port override DNS SRV lookup when set.
	Host      string `json:"host,omitempty"`
	Port      uint16 `json:"port,omitempty"`
	DirectTLS bool   `json:"direct_tls,omitempty"`
	// InsecureTLSHost is the one host whose unverified (self-signed)
	// certificate the user accepted at login.
	InsecureTLSHost string `json:"insecure_tls_host,omitempty"`
	// LastArchiveID is the newest XEP-0313 archive id (stanza-id by the
	// account) the bridge has seen; catch-up after a reconnect starts there.
	LastArchiveID string `json:"last_archive_id,omitempty"`
	// ArchiveSince is when the login began, taken before its XMPP session
	// was bound. While LastArchiveID is empty, catch-up asks the archive
	// for everything since then (mam.go): a message that reached the server
	// between the bind and the initial presence went to no client of the
	// bridge (no carbon, no offline copy while another resource is online).
	ArchiveSince time.Time `json:"archive_since,omitzero"`
	// Rooms are the group chats the login joined with the join command;
	// they are joined again after every reconnect (mucjoin.go).
	Rooms []SavedRoom `json:"rooms,omitempty"`
	// Invites are the group chat invitations the Matrix user has not
	// answered yet (mucinvitestore.go).
	Invites []SavedInvite `json:"invites,omitempty"`
	// Left are the group chats the user left and has not joined since
	// (mucleft.go).
	Left []LeftRoom `json:"left_rooms,omitempty"`
}

// GetDBMetaTypes implements bridgev2.NetworkConnector.
func (xc *Connector) GetDBMetaTypes() database.MetaTypes {
	return database.MetaTypes{
		Portal:    func() any { return &portal.Metadata{} },
		Ghost:     func() any { return &puppet.Metadata{} },
		Message:   func() any { return &portal.MessageMetadata{} },
		Reaction:  nil,
		UserLogin: func() any { return &UserLoginMetadata{} },
	}
}

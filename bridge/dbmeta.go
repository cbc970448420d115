package bridge

import (
	"maunium.net/go/mautrix/bridgev2/database"
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
	// Rooms are the group chats the login joined with the join command;
	// they are joined again after every reconnect (mucjoin.go).
	Rooms []MUCRoom `json:"rooms,omitempty"`
}

// PortalMetadata is stored per portal.
type PortalMetadata struct {
	// Kind is "dm" or "muc", for readers of the database; the portal key
	// says the same.
	Kind string `json:"kind,omitempty"`
	// OMEMO is set when the chat is encrypted (see omemochat.go);
	// OMEMOOff when the user turned encryption off explicitly.
	OMEMO    bool `json:"omemo,omitempty"`
	OMEMOOff bool `json:"omemo_off,omitempty"`
	// PlainNoticed is set once the room was told that messages go out
	// unencrypted because the contact publishes no OMEMO device
	// (omemodefault.go).
	PlainNoticed bool `json:"plain_noticed,omitempty"`
}

// GhostMetadata is stored per ghost.
type GhostMetadata struct {
	// RosterName is the name the login's roster last gave the contact.
	RosterName string `json:"roster_name,omitempty"`
	// Nick is the name the contact gives itself (XEP-0172 nick, vCard NICKNAME/FN): the
	// ghost's name when no roster names the contact (contactname.go).
	Nick string `json:"nick,omitempty"`
}

// MessageMetadata keeps the XEP-0359 ids of a bridged message besides the
// id attribute that is part of its MessageID, for later MAM lookups and for
// references (replies, retractions) that use the stanza-id.
type MessageMetadata struct {
	OriginID string `json:"origin_id,omitempty"`
	StanzaID string `json:"stanza_id,omitempty"`
	// Markable is set when the sender asked for XEP-0333 chat markers,
	// which may only be sent for such messages.
	Markable bool `json:"markable,omitempty"`
	// CorrectionIDs are the ids of XEP-0308 corrections the bridge sent for
	// this message, so that the archive's copies are not bridged back.
	CorrectionIDs []string `json:"correction_ids,omitempty"`
	// OccupantID is the XEP-0421 id the room stamped on a groupchat
	// message (occupantid.go).
	OccupantID string `json:"occupant_id,omitempty"`
}

// GetDBMetaTypes implements bridgev2.NetworkConnector.
func (xc *Connector) GetDBMetaTypes() database.MetaTypes {
	return database.MetaTypes{
		Portal:    func() any { return &PortalMetadata{} },
		Ghost:     func() any { return &GhostMetadata{} },
		Message:   func() any { return &MessageMetadata{} },
		Reaction:  nil,
		UserLogin: func() any { return &UserLoginMetadata{} },
	}
}

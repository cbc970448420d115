package puppet

// Metadata is what bridgev2 stores per ghost (the connector registers it in
// GetDBMetaTypes); its JSON is the database's, so field tags never change.
type Metadata struct {
	// RosterName is the name the login's roster last gave the contact.
	RosterName string `json:"roster_name,omitempty"`
	// Nick is the name the contact gives itself (XEP-0172 nick, vCard NICKNAME/FN): the
	// ghost's name when no roster names the contact (bridge/contactname.go).
	Nick string `json:"nick,omitempty"`
}

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

// SetRosterName records the name a roster gives the contact; it reports
// whether the metadata changed (bridgev2 then saves the ghost). An empty
// name never clears one another roster gave.
func (m *Metadata) SetRosterName(n string) bool {
	if m == nil || n == "" || m.RosterName == n {
		return false
	}
	m.RosterName = n
	return true
}

// SetNick records the name the contact gives itself; it reports whether
// the metadata changed.
func (m *Metadata) SetNick(n string) bool {
	if m == nil || n == "" || m.Nick == n {
		return false
	}
	m.Nick = n
	return true
}

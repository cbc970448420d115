package portal

// Metadata is what bridgev2 stores per portal (the connector registers it in
// GetDBMetaTypes); its JSON is the database's, so field tags never change.
type Metadata struct {
	// Kind is "dm", "muc" or "pm" (Kind.String), for readers of the
	// database; the portal key says the same.
	Kind string `json:"kind,omitempty"`
	// OMEMO is set when the chat is encrypted (see bridge/omemochat.go);
	// OMEMOOff when the user turned encryption off explicitly.
	OMEMO    bool `json:"omemo,omitempty"`
	OMEMOOff bool `json:"omemo_off,omitempty"`
	// PlainNoticed is set once the room was told that messages go out
	// unencrypted because the contact publishes no OMEMO device
	// (bridge/omemodefault.go).
	PlainNoticed bool `json:"plain_noticed,omitempty"`
	// HistoryCursor is the oldest archive id the `history` command showed
	// in this 1:1 chat (bridge/olderhistory.go).
	HistoryCursor string `json:"history_cursor,omitempty"`
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
	// message (bridge/occupantid.go).
	OccupantID string `json:"occupant_id,omitempty"`
}

// SetKind records the chat's kind; it reports whether the metadata changed
// (bridgev2 then saves the portal). A portal without our metadata (nil) is
// left alone.
func (m *Metadata) SetKind(k Kind) bool {
	if m == nil || m.Kind == k.String() {
		return false
	}
	m.Kind = k.String()
	return true
}

package mucadmin

import (
	"context"
	"fmt"

	"mellium.im/xmpp"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/form"
	"mellium.im/xmpp/jid"
)

// Anonymity says who may see occupants' real JIDs.
type Anonymity int

// Room anonymity kinds (XEP-0045 §4.2). OMEMO needs NonAnonymous.
const (
	AnonymityUnknown Anonymity = iota
	NonAnonymous               // everyone sees real JIDs
	SemiAnonymous              // only moderators do
	FullyAnonymous             // nobody does (status 174; no disco#info feature names it)
)

// String implements fmt.Stringer.
func (a Anonymity) String() string {
	switch a {
	case NonAnonymous:
		return "non-anonymous"
	case SemiAnonymous:
		return "semi-anonymous"
	case FullyAnonymous:
		return "fully anonymous"
	}
	return "unknown"
}

// Disco#info features of rooms (XEP-0045 §15.2.2).
const (
	FeatureNonAnonymous  = "muc_nonanonymous"
	FeatureSemiAnonymous = "muc_semianonymous"
	FeatureMembersOnly   = "muc_membersonly"
)

// AnonymityFromFeatures reads the room's anonymity from its disco#info
// features. A room advertising both is treated as semi-anonymous: when in
// doubt, do not assume real JIDs are visible.
func AnonymityFromFeatures(features []string) Anonymity {
	var non, semi bool
	for _, f := range features {
		switch f {
		case FeatureNonAnonymous:
			non = true
		case FeatureSemiAnonymous:
			semi = true
		}
	}
	switch {
	case semi:
		return SemiAnonymous
	case non:
		return NonAnonymous
	}
	return AnonymityUnknown
}

// AnonymityFromConfig reads muc#roomconfig_whois from a room's owner
// configuration form (as returned by mellium's muc.GetConfig).
func AnonymityFromConfig(d *form.Data) Anonymity {
	if d == nil {
		return AnonymityUnknown
	}
	v, _ := d.Raw("muc#roomconfig_whois")
	if len(v) != 1 {
		return AnonymityUnknown
	}
	switch v[0] {
	case "anyone":
		return NonAnonymous
	case "moderators":
		return SemiAnonymous
	}
	return AnonymityUnknown
}

// RoomInfo is what the bridge needs from a room's disco#info.
type RoomInfo struct {
	Anonymity   Anonymity
	MembersOnly bool
	Features    []string
}

// RoomInfoFrom extracts RoomInfo from a disco#info answer.
func RoomInfoFrom(info disco.Info) RoomInfo {
	ri := RoomInfo{}
	for _, f := range info.Features {
		ri.Features = append(ri.Features, f.Var)
		if f.Var == FeatureMembersOnly {
			ri.MembersOnly = true
		}
	}
	ri.Anonymity = AnonymityFromFeatures(ri.Features)
	return ri
}

// GetRoomInfo asks room for its disco#info. Unlike the owner configuration
// it is readable by anyone, so it works for ordinary members.
func GetRoomInfo(ctx context.Context, s *xmpp.Session, room jid.JID) (RoomInfo, error) {
	info, err := disco.GetInfo(ctx, "", room.Bare(), s)
	if err != nil {
		return RoomInfo{}, fmt.Errorf("failed to query disco#info of %s: %w", room, err)
	}
	return RoomInfoFrom(info), nil
}

package mucroom

import (
	"strings"

	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/jid"
)

// Fields of the muc#roominfo form in a room's disco#info (§15.5.4).
const (
	nsRoomInfo       = "http://jabber.org/protocol/muc#roominfo"
	fieldRoomName    = "muc#roomconfig_roomname"
	fieldRoomSubject = "muc#roominfo_subject"
)

// Info is what the bridge shows of a room before joining it.
type Info struct {
	// Name is the room's natural-language name; empty if it has none.
	Name string
	// Subject is the current subject if the room publishes it.
	Subject string
}

// InfoFrom reads a room's disco#info: the name of its conference identity,
// else the room name of its muc#roominfo form.
func InfoFrom(info disco.Info) Info {
	var out Info
	for _, id := range info.Identity {
		if id.Category == "conference" && strings.TrimSpace(id.Name) != "" {
			out.Name = strings.TrimSpace(id.Name)
			break
		}
	}
	for i := range info.Form {
		f := &info.Form[i]
		if typ, _ := f.GetString("FORM_TYPE"); typ != nsRoomInfo {
			continue
		}
		if out.Name == "" {
			if v, ok := f.Raw(fieldRoomName); ok && len(v) > 0 {
				out.Name = strings.TrimSpace(v[0])
			}
		}
		if v, ok := f.Raw(fieldRoomSubject); ok && len(v) > 0 {
			out.Subject = v[0]
		}
	}
	return out
}

// Name is what to call room: its name, else its localpart.
func Name(info Info, room jid.JID) string {
	if info.Name != "" {
		return info.Name
	}
	if l := room.Localpart(); l != "" {
		return l
	}
	return room.Domainpart()
}

package xmppclient

import (
	"encoding/xml"
	"errors"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/xmpp/chatstates"
	"github.com/mxomemo/xmpp-bridge/xmpp/correct"
	"github.com/mxomemo/xmpp-bridge/xmpp/markers"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucadmin"
	"github.com/mxomemo/xmpp-bridge/xmpp/oob"
	"github.com/mxomemo/xmpp-bridge/xmpp/reply"
	"github.com/mxomemo/xmpp-bridge/xmpp/sid"
)

// ErrMediaChatChanged: a file was uploaded for the other kind of chat (an
// aesgcm link for a plaintext chat, or a plain upload for an encrypted
// one); the text reaches Matrix users.
var ErrMediaChatChanged = errors.New("the chat's OMEMO encryption changed while the file was uploaded; send it again")

// ErrPrivateEncrypted: a private message with a room occupant is never
// encrypted (the occupant's real JID, and so its devices, may be unknown).
var ErrPrivateEncrypted = errors.New("private messages with room occupants are not encrypted")

// Outgoing is a message with a body on its way to XMPP, in a 1:1 chat or a
// room, before encryption: one type for both.
type Outgoing struct {
	To jid.JID
	// Room sends it to a room (type groupchat, to the room's bare JID);
	// otherwise it is a 1:1 chat message.
	Room bool
	// Private sends it to a room occupant (To is room@service/nick) as a
	// private message through the room (XEP-0045 §7.5): type chat with the
	// muc#user marker, plaintext and text only.
	Private bool
	// ID is both the id attribute and the origin-id, so that replies,
	// receipts and corrections from any client point back to it.
	ID   string
	Body string
	// Replace is the id of our earlier message this one corrects.
	Replace string
	// ReplyTo names the message this one replies to.
	ReplyTo *reply.Reply
	// Media is set for a shared file.
	Media *OutgoingMedia
}

// OutgoingMedia marks an outgoing message as a shared file.
type OutgoingMedia struct {
	// OOB is the URL for the XEP-0066 element of a plaintext message.
	OOB string
	// Encrypted says the upload was made for an OMEMO chat (an aesgcm
	// link); the message must then go out encrypted, and a plaintext
	// upload must not.
	Encrypted bool
}

// CheckMedia refuses a shared file that would go out otherwise than it was
// uploaded (ErrMediaChatChanged); checked before anything is encrypted.
func (o *Outgoing) CheckMedia(encrypted bool) error {
	if o.Media != nil && o.Media.Encrypted != encrypted {
		return ErrMediaChatChanged
	}
	return nil
}

// payload is what the message carries besides the body, in 1:1 chats and
// rooms: a marker request (1:1), the origin-id, an active chat state (the
// muc#user marker instead in a private message) and the references to an
// earlier message. It stays outside the encryption,
// as other OMEMO clients send it.
func (o *Outgoing) payload() []xml.TokenReader {
	var payload []xml.TokenReader
	if !o.Room && !o.Private {
		payload = append(payload, markers.Markable{}.TokenReader())
	}
	payload = append(payload, sid.OriginID{ID: o.ID}.TokenReader())
	if o.Private {
		payload = append(payload, xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: mucadmin.NSUser, Local: "x"}}))
	} else {
		payload = append(payload, chatstates.Active.TokenReader())
	}
	if o.Replace != "" {
		payload = append(payload, correct.Replace{ID: o.Replace}.TokenReader())
	}
	if o.ReplyTo != nil {
		payload = append(payload, o.ReplyTo.TokenReader())
	}
	return payload
}

func (o *Outgoing) header() stanza.Message {
	if o.Room {
		return stanza.Message{To: o.To.Bare(), ID: o.ID, Type: stanza.GroupChatMessage}
	}
	return stanza.Message{To: o.To, ID: o.ID, Type: stanza.ChatMessage}
}

// Stanza is the message stanza: with enc nil the plain body, the payload
// and a file's OOB element; otherwise the OMEMO elements of enc (with EME,
// a store hint and the fallback body) and the payload, never the OOB
// element, which would reveal the link. It refuses a file uploaded for the
// other kind of chat.
func (o *Outgoing) Stanza(enc *omemoxmpp.Outgoing) (xml.TokenReader, error) {
	if err := o.CheckMedia(enc != nil); err != nil {
		return nil, err
	}
	if o.Private && enc != nil {
		return nil, ErrPrivateEncrypted
	}
	payload := o.payload()
	if enc != nil {
		return omemoxmpp.BuildMessage(o.header(), enc, payload...)
	}
	if o.Media != nil && o.Media.OOB != "" {
		payload = append(payload, oob.Data{URL: o.Media.OOB}.TokenReader())
	}
	body := xmlstream.Wrap(xmlstream.Token(xml.CharData(o.Body)), xml.StartElement{Name: xml.Name{Local: "body"}})
	return o.header().Wrap(xmlstream.MultiReader(append([]xml.TokenReader{body}, payload...)...)), nil
}

// Package vcardphoto implements the avatar parts of XEP-0054: vcard-temp and
// XEP-0153: vCard-Based Avatars.
//
// Older clients keep the avatar as the PHOTO (TYPE and base64 BINVAL) of the
// account's vcard-temp, fetched with an IQ get to the bare JID, and announce
// its SHA-1 in every presence as <x xmlns='vcard-temp:x:update'><photo/></x>
// so that others know when to fetch it again. Only the photo is read here;
// the rest of the vCard is skipped. Image data goes through
// avatar.DecodeImage, so the same size cap and hash check apply as for
// XEP-0084.
package vcardphoto // import "github.com/mxomemo/xmpp-bridge/xmpp/vcardphoto"

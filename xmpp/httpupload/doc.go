// Package httpupload implements XEP-0363: HTTP File Upload.
//
// The client finds the upload service of its server (Discover: disco#items
// of the server, disco#info of each item for the urn:xmpp:http:upload:0
// feature and its max-file-size), asks it for a slot for one file
// (RequestSlot), PUTs the bytes to the slot's PUT URL with the headers the
// service named (Put) and shares the GET URL. Only the Authorization,
// Cookie and Expires headers of a slot are ever sent (§5).
//
// The bridge shares the GET URL with XEP-0066 (package oob) in plaintext
// chats and as an XEP-0454 aesgcm:// link (package aesgcm) in OMEMO chats.
// mellium.im/xmpp/upload encodes the slot request (used here); this package
// adds service discovery with max-file-size, a stricter slot (https URLs
// only, header values without line breaks), bounded waits and the PUT.
package httpupload // import "github.com/mxomemo/xmpp-bridge/xmpp/httpupload"

// Package avatar implements the stanzas of XEP-0084: User Avatar.
//
// A contact publishes the image (base64) as an item of the PEP node
// urn:xmpp:avatar:data whose id is the hex SHA-1 of the bytes, and then a
// <metadata/> item (same id) on urn:xmpp:avatar:metadata describing it.
// Clients that advertise urn:xmpp:avatar:metadata+notify get the metadata
// pushed and fetch the data item when the id is new to them; an empty
// <metadata/> means the avatar was taken down.
//
// ParseMetadata and ParseData read items as xmpp/pubsub returns them;
// ParseData checks the SHA-1 and refuses data over MaxSize. Data and
// Metadata.TokenReader build the payloads for publishing (used by tests).
// The package imports only xmpp/pubsub and mellium; it knows nothing of the
// bridge.
package avatar // import "github.com/mxomemo/xmpp-bridge/xmpp/avatar"

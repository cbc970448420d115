// Package xmppclient is one login's XMPP client, knowing nothing of
// bridgev2 or Matrix: the connection loop with backoff (pings only when configured)
// (conn.go) with XEP-0198 stream management (streammgmt.go, over xmpp/sm:
// acknowledgements, resumption, the unacknowledged messages of a refused
// resumption looked up and sent again), where a stanza enters (router.go) and its one classification
// (inbound.go), the ordered stream of events it hands the connector
// (stream.go), the catch-up cursors and the acknowledgement of each
// message (cursor.go: Ack), archive queries and catch-up paging
// (queries.go, archive.go), the roster and presence cache (roster.go),
// 1:1 message stanzas read into a typed Message (message.go), groupchat
// messages read and classified (groupchat.go), the rooms' live state and
// joins (rooms.go, roomjoin.go), bookmarks (bookmarks.go), invitations
// and private messages with occupants (invites.go), room creation
// (roomcreate.go), the payloads of PEP notifications (pep.go), avatars
// (avatar.go), media transfer (mediafetch.go, mediaupload.go,
// mediadial.go), outgoing messages (one builder for 1:1, room and private
// messages) and signals (outgoing.go, signal.go, session.go), our caps
// (caps.go), and the OMEMO orchestration: the ratchet lock (ratchet.go),
// the device announced on a new session (omemoconnect.go), announcement
// retries and key maintenance (omemoannounce.go), the daily maintenance of
// every login on one timer (keymaintenance.go), the reset policy
// (omemoresets.go), the bounded work queue (omemoqueue.go), device lists
// applied and fetched before encrypting (devicelists.go, omemodevices.go),
// the decryption step and the envelope's addressing (omemodecrypt.go) and
// the protocol part of the trust commands (omemotrust.go).
//
// It may import mellium, our xmpp/* stanza packages and omemo*; it must
// never import bridge, msgconv, portal, puppet or anything of mautrix
// (internal/archtest checks it).
package xmppclient // import "github.com/mxomemo/xmpp-bridge/xmppclient"

// Package sm is XEP-0198 Stream Management for a client session of
// mellium.im/xmpp (which has none): acknowledgements of stanzas both ways
// and the resumption of a dropped stream.
//
// mellium gives no hook into the stanzas a session reads or writes, so the
// package sits below it: Manager.Wrap wraps the authenticated connection
// (what mellium's SASL feature hands back for the stream restart) in a
// net.Conn that splits both byte streams into their top-level elements.
// The wrapper is an io.ByteReader, so mellium's XML decoder reads it a byte
// at a time instead of buffering ahead: an inbound stanza is counted when
// the decoder has consumed its last byte, and because mellium's Serve
// handles one element after another, every stanza counted has been handed
// to the session's handler by the time the next element is read. Outbound
// stanzas are kept, as the bytes written, from the moment their last byte
// was written without error until the server acknowledges them.
//
// Manager.Bind wraps mellium's resource binding: when the manager holds a
// resumable stream and the server offers stream management, it sends
// <resume/> instead of binding and, on <resumed/>, writes the stanzas the
// server has not acknowledged again (the same bytes, so the same ids);
// otherwise, or on <failed/>, it binds and sends <enable resume='true'/>.
// Stanzas left unacknowledged by a stream that could not be resumed are
// kept for the caller (Manager.TakeLost), which decides what to send again.
//
// Manager.Handler answers the server's <r/> with <a h/> and keeps the
// management elements from the application's handler; Manager.Run asks the
// server for acknowledgements while stanzas wait for one.
package sm // import "github.com/mxomemo/xmpp-bridge/xmpp/sm"

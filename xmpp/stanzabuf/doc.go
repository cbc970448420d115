// Package stanzabuf reads one stanza into memory so that several of the
// stanza packages under xmpp/ can parse it in turn.
//
// Each Parse/Extract function of those packages consumes the token reader
// it is given. A handler that needs the body, the stanza ids, a reply and a
// correction from one message buffers it once with Read and hands each
// parser a fresh Reader:
//
//	st, err := stanzabuf.Read(r)
//	ids, err := sid.Extract(st.Reader())
//	rep, ok, err := reply.Parse(st.Reader())
//
// It is not an XEP; it exists because mellium's token readers are one-shot.
package stanzabuf // import "github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"

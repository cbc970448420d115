package caps

import (
	"context"
	"encoding/xml"
	"fmt"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/iqresp"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/iqwait"
	"github.com/mxomemo/xmpp-bridge/xmpp/xmltok"
)

// Response returns the answer to a disco#info get iq whose <query/> had
// the node attribute queryNode: info for "" and for node#ver, item-not-found
// for any other node. The answer echoes the query's node as XEP-0115 §6.2
// requires.
func Response(iq stanza.IQ, queryNode, node string, info Info) (xml.TokenReader, error) {
	ver, err := info.Ver()
	if err != nil {
		return nil, err
	}
	if queryNode != "" && queryNode != node+"#"+ver {
		return iq.Error(stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound}), nil
	}
	return iq.Result(info.query(queryNode)), nil
}

// Handle returns a mux option that answers disco#info queries with info
// (see Response). Use it instead of mellium's disco.Handle, not beside it.
func Handle(node string, info Info) mux.Option {
	return mux.IQ(stanza.GetIQ, xml.Name{Space: NSInfo, Local: "query"},
		mux.IQHandlerFunc(func(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			queryNode := ""
			for _, a := range start.Attr {
				if a.Name == (xml.Name{Local: "node"}) {
					queryNode = a.Value
				}
			}
			resp, err := Response(iq, queryNode, node, info)
			if err != nil {
				return fmt.Errorf("failed to answer disco#info: %w", err)
			}
			_, err = xmlstream.Copy(t, resp)
			return err
		}))
}

// InfoIQ returns a disco#info get for node ("" for none) of to.
func InfoIQ(to jid.JID, node string) xml.TokenReader {
	start := xml.StartElement{Name: xml.Name{Space: NSInfo, Local: "query"}}
	if node != "" {
		start.Attr = []xml.Attr{{Name: xml.Name{Local: "node"}, Value: node}}
	}
	return stanza.IQ{Type: stanza.GetIQ, To: to}.Wrap(xmlstream.Wrap(nil, start))
}

// ParseInfo reads the response to InfoIQ. An error response is a
// stanza.Error.
func ParseInfo(r xml.TokenReader) (Info, error) {
	kids, err := iqresp.Read(r, nil)
	if err != nil {
		return Info{}, err
	}
	for _, k := range kids {
		s := k[0].(xml.StartElement)
		if s.Name.Space == NSInfo && s.Name.Local == "query" {
			var i Info
			err := xml.NewTokenDecoder(xmltok.Replay(k)).Decode(&i)
			return i, err
		}
	}
	return Info{}, fmt.Errorf("%w: no disco#info query in result", ErrMalformed)
}

// Fetch asks to for the disco#info behind caps c and verifies it against
// c.Ver, so that it can be cached under c.Ver.
func Fetch(ctx context.Context, s *xmpp.Session, to jid.JID, c Caps) (Info, error) {
	ctx, cancel := iqwait.Context(ctx)
	defer cancel()
	resp, err := s.SendIQ(ctx, InfoIQ(to, c.Node+"#"+c.Ver))
	if err != nil {
		return Info{}, fmt.Errorf("failed to query disco#info of %s: %w", to, err)
	}
	defer resp.Close()
	info, err := ParseInfo(resp)
	if err != nil {
		return Info{}, fmt.Errorf("failed to query disco#info of %s: %w", to, err)
	}
	if err := info.Verify(c.Hash, c.Ver); err != nil {
		return Info{}, fmt.Errorf("failed to verify caps of %s: %w", to, err)
	}
	return info, nil
}

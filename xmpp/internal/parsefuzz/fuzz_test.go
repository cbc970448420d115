package parsefuzz

import (
	"encoding/xml"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/avatar"
	"github.com/mxomemo/xmpp-bridge/xmpp/caps"
	"github.com/mxomemo/xmpp-bridge/xmpp/carbons"
	"github.com/mxomemo/xmpp-bridge/xmpp/chatstates"
	"github.com/mxomemo/xmpp-bridge/xmpp/correct"
	"github.com/mxomemo/xmpp-bridge/xmpp/eme"
	"github.com/mxomemo/xmpp-bridge/xmpp/fallback"
	"github.com/mxomemo/xmpp-bridge/xmpp/hints"
	"github.com/mxomemo/xmpp-bridge/xmpp/internal/xmltest"
	"github.com/mxomemo/xmpp-bridge/xmpp/markers"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucadmin"
	"github.com/mxomemo/xmpp-bridge/xmpp/mucroom"
	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
	"github.com/mxomemo/xmpp-bridge/xmpp/reactions"
	"github.com/mxomemo/xmpp-bridge/xmpp/reply"
	"github.com/mxomemo/xmpp-bridge/xmpp/retract"
	"github.com/mxomemo/xmpp-bridge/xmpp/sid"
	"github.com/mxomemo/xmpp-bridge/xmpp/stanzabuf"
	"github.com/mxomemo/xmpp-bridge/xmpp/vcardphoto"
)

var seeds = []string{
	`<message xmlns="jabber:client" from="a@b"><body>> q` + "\n" + `x</body><origin-id xmlns="urn:xmpp:sid:0" id="o"/>` +
		`<stanza-id xmlns="urn:xmpp:sid:0" id="s" by="a@b"/><reply xmlns="urn:xmpp:reply:0" to="a@b/c" id="r"/>` +
		`<fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:reply:0"><body start="0" end="4"/></fallback>` +
		`<replace xmlns="urn:xmpp:message-correct:0" id="x"/><retract xmlns="urn:xmpp:message-retract:1" id="y"/>` +
		`<reactions xmlns="urn:xmpp:reactions:0" id="z"><reaction>👍</reaction></reactions><store xmlns="urn:xmpp:hints"/>` +
		`<active xmlns="http://jabber.org/protocol/chatstates"/><displayed xmlns="urn:xmpp:chat-markers:0" id="d"/>` +
		`<encryption xmlns="urn:xmpp:eme:0" namespace="urn:xmpp:omemo:2"/></message>`,
	`<message xmlns="jabber:client" from="a@b"><received xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0">` +
		`<delay xmlns="urn:xmpp:delay" stamp="2020-01-01T00:00:00Z"/><message xmlns="jabber:client" to="a@b/c"><body>x</body></message>` +
		`</forwarded></received></message>`,
	`<message xmlns="jabber:client"><event xmlns="http://jabber.org/protocol/pubsub#event"><items node="n"><item id="i"><x/></item>` +
		`<retract id="j"/></items></event></message>`,
	`<iq xmlns="jabber:client" type="result"><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="n"><item id="i"><p/></item></items></pubsub></iq>`,
	`<iq xmlns="jabber:client" type="error"><error type="cancel"><conflict xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>` +
		`<precondition-not-met xmlns="http://jabber.org/protocol/pubsub#errors"/></error></iq>`,
	`<iq xmlns="jabber:client" type="result"><pubsub xmlns="http://jabber.org/protocol/pubsub#owner"><configure node="n">` +
		`<x xmlns="jabber:x:data" type="form"><field var="FORM_TYPE"><value>v</value></field></x></configure></pubsub></iq>`,
	`<iq xmlns="jabber:client" type="result"><query xmlns="http://jabber.org/protocol/disco#info"><identity category="c" type="t"/>` +
		`<feature var="f"/><x xmlns="jabber:x:data" type="result"><field var="FORM_TYPE" type="hidden"><value>t</value></field></x></query></iq>`,
	`<iq xmlns="jabber:client" type="result"><query xmlns="http://jabber.org/protocol/muc#admin"><item affiliation="member" jid="a@b"/></query></iq>`,
	`<presence xmlns="jabber:client"><x xmlns="http://jabber.org/protocol/muc#user"><item jid="a@b/c" affiliation="member"/><status code="110"/></x></presence>`,
	`<message xmlns="jabber:client" from="r@m/n" type="groupchat"><subject>t</subject><stanza-id xmlns="urn:xmpp:sid:0" id="s" by="r@m"/>` +
		`<delay xmlns="urn:xmpp:delay" stamp="2020-01-01T00:00:00Z"/><x xmlns="http://jabber.org/protocol/muc#user"><status code="104"/></x></message>`,
	`<presence xmlns="jabber:client" from="r@m/n" type="error"><error type="cancel"><conflict xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></presence>`,
	`<message xmlns="jabber:client" from="a@b"><event xmlns="http://jabber.org/protocol/pubsub#event"><items node="urn:xmpp:avatar:metadata">` +
		`<item id="6b5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e"><metadata xmlns="urn:xmpp:avatar:metadata"><info id="6b5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e" type="image/png" bytes="3"/></metadata></item></items></event></message>`,
	`<iq xmlns="jabber:client" type="result"><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="urn:xmpp:avatar:data"><item id="i"><data xmlns="urn:xmpp:avatar:data">aGk=</data></item></items></pubsub></iq>`,
	`<iq xmlns="jabber:client" type="result"><vCard xmlns="vcard-temp"><PHOTO><TYPE>image/png</TYPE><BINVAL>aGk=</BINVAL></PHOTO></vCard></iq>`,
	`<presence xmlns="jabber:client" from="a@b/c"><x xmlns="vcard-temp:x:update"><photo>6b5e</photo></x></presence>`,
}

func FuzzParsers(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	me := jid.MustParse("a@b/c")
	f.Fuzz(func(t *testing.T, in string) {
		src := func() xml.TokenReader { return xmltest.Reader(in) }
		_, _ = sid.Extract(src())
		if c, err := carbons.Parse(src(), me); err == nil {
			_, _ = sid.Extract(c.Inner())
		}
		if ev, err := pubsub.ParseEvent(src()); err == nil {
			for _, it := range ev.Items {
				_, _ = it.Bytes()
				if m, err := avatar.ParseMetadata(it); err == nil {
					_, _ = m.InData()
				}
			}
		}
		if items, err := pubsub.ParseItems(src()); err == nil {
			for _, it := range items {
				_, _ = avatar.ParseData(it, it.ID)
			}
		}
		_, _ = vcardphoto.Parse(src())
		_, _, _ = vcardphoto.ParseUpdate(src())
		_, _ = pubsub.ParsePublishResult(src())
		_, _ = pubsub.ParseConfig(src())
		if info, err := caps.ParseInfo(src()); err == nil {
			_, _ = info.Ver()
		}
		_, _ = hints.Parse(src())
		_, _ = chatstates.Parse(src())
		_, _ = markers.Parse(src())
		_, _, _ = correct.Parse(src())
		_, _, _ = retract.Parse(src())
		_, _, _ = reactions.Parse(src())
		_, _, _ = reply.Parse(src())
		if fbs, err := fallback.Parse(src()); err == nil {
			_, _ = fallback.Strip(in, fbs, reply.NS, retract.NS)
		}
		_, _, _ = eme.Parse(src())
		_, _ = mucadmin.ParseAffiliations(src())
		_, _, _ = mucadmin.ParseUser(src())
		_, _ = mucroom.ParsePresence(src())
		_, _ = mucroom.ParseMessage(src())
		if st, err := stanzabuf.Read(src()); err == nil {
			_, _ = sid.Extract(st.Reader())
		}
	})
}

package pubsub_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/xmpp/internal/fakesession"
	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
)

func TestPublishReconfigure(t *testing.T) {
	published := 0
	s, srv := fakesession.New(t, jid.MustParse("romeo@montague.example/home"), func(req string) string {
		switch {
		case strings.Contains(req, "<publish "):
			published++
			if published == 1 {
				return strings.Replace(preconditionNotMet, `id="1"`, `id="{{id}}"`, 1)
			}
			return `<iq xmlns="jabber:client" type="result" id="{{id}}"><pubsub xmlns="http://jabber.org/protocol/pubsub"><publish node="n"><item id="current"/></publish></pubsub></iq>`
		case strings.Contains(req, "<configure "):
			return `<iq xmlns="jabber:client" type="result" id="{{id}}"/>`
		}
		return `<iq xmlns="jabber:client" type="error" id="{{id}}"><error type="cancel"><feature-not-implemented xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	id, err := pubsub.PublishReconfigure(ctx, s, "n", "current", devices(), pubsub.AccessModel(pubsub.AccessOpen))
	if err != nil {
		t.Fatalf("failed to publish: %v", err)
	}
	if id != "current" {
		t.Errorf("wrong id %q", id)
	}
	reqs := srv.Requests()
	if len(reqs) != 3 {
		t.Fatalf("want publish, configure, publish; got %d requests: %v", len(reqs), reqs)
	}
	for i, want := range []string{"<publish ", "<configure ", "<publish "} {
		if !strings.Contains(reqs[i], want) {
			t.Errorf("request %d is not %s: %s", i, want, reqs[i])
		}
	}
	// The payload must be sent in full both times.
	if !strings.Contains(reqs[2], `<device id="1">`) || !strings.Contains(reqs[2], "pubsub#access_model") {
		t.Errorf("retry lost payload or options: %s", reqs[2])
	}

	if _, err := pubsub.Items(ctx, s, jid.MustParse("juliet@capulet.example"), "n", 0); err == nil {
		t.Error("error response not returned")
	}
}

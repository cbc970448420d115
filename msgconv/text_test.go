package msgconv

import (
	"context"
	"testing"

	"maunium.net/go/mautrix/event"
)

func TestBodyFromMatrix(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content event.MessageEventContent
		want    string
	}{
		{"plain", event.MessageEventContent{MsgType: event.MsgText, Body: "hello"}, "hello"},
		{"plain keeps markup", event.MessageEventContent{MsgType: event.MsgText, Body: "a <b> c"}, "a <b> c"},
		{"bold", html("<b>bold</b> text"), "*bold* text"},
		{"italic", html("an <em>em</em> word"), "an _em_ word"},
		{"strike", html("<del>gone</del>"), "~gone~"},
		{"inline code", html("run <code>make</code>"), "run `make`"},
		{"code block", html("<pre><code>a\nb\n</code></pre>"), "```\na\nb\n```"},
		{"link", html(`see <a href="https://example.org/x">this</a>`), "see this <https://example.org/x>"},
		{"bare link", html(`<a href="https://example.org">https://example.org</a>`), "https://example.org"},
		{"pill", html(`hi <a href="https://matrix.to/#/@bob:example.org">Bob</a>`), "hi Bob"},
		{"quote", html("<blockquote>quoted</blockquote>reply"), "> quoted\nreply"},
		{"list", html("<ul><li>one</li><li>two</li></ul>"), "* one\n* two"},
		{"paragraphs", html("<p>one</p><p>two</p>"), "one\n\ntwo"},
		{"br", html("a<br>b"), "a\nb"},
		{"entities", html("1 &lt; 2 &amp;&amp; 3 &gt; 2"), "1 < 2 && 3 > 2"},
		{"bold trims spaces", html("say <b> x </b>"), "say *x*"},
		{"emote", event.MessageEventContent{MsgType: event.MsgEmote, Body: "waves"}, "/me waves"},
		{"html emote", event.MessageEventContent{MsgType: event.MsgEmote, Body: "waves", Format: event.FormatHTML, FormattedBody: "<b>waves</b>"}, "/me *waves*"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := BodyFromMatrix(context.Background(), &tc.content); got != tc.want {
				t.Errorf("BodyFromMatrix = %q, want %q", got, tc.want)
			}
		})
	}
}

func html(s string) event.MessageEventContent {
	return event.MessageEventContent{MsgType: event.MsgText, Body: "fallback", Format: event.FormatHTML, FormattedBody: s}
}

func TestMatrixFromBody(t *testing.T) {
	for _, tc := range []struct {
		body    string
		msgType event.MessageType
		text    string
	}{
		{"hello", event.MsgText, "hello"},
		{"/me waves", event.MsgEmote, "waves"},
		{"/meh", event.MsgText, "/meh"},
		{"<b>not html</b>", event.MsgText, "<b>not html</b>"},
	} {
		got := MatrixFromBody(tc.body)
		if got.MsgType != tc.msgType || got.Body != tc.text || got.Format != "" {
			t.Errorf("MatrixFromBody(%q) = %+v", tc.body, got)
		}
	}
}

package bridge

import (
	"context"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/metrics"
	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// XEP-0198 stream management is xmppclient.Conn's (xmppclient/streammgmt.go
// says what is acknowledged when, and what is sent again after a stream
// that could not be resumed). The connector logs and counts how each
// session began, and gives the client its archive look-ups.

// StreamStarted implements xmppclient.ConnHooks.
func (h connHooks) StreamStarted(ctx context.Context, st xmppclient.StreamStart) {
	log := zerolog.Ctx(ctx)
	switch st.How {
	case xmppclient.StreamResumed:
		log.Info().Int("resent", st.Resent).Uint32("h_in", st.InH).Uint32("h_out", st.ServerH).Msg("XMPP stream resumed")
		h.c.main.Metrics.XMPPStream(metrics.StreamResumed)
	case xmppclient.StreamResumeFailed:
		log.Warn().Str("condition", st.Condition).Msg("XMPP stream resumption refused; bound a new session")
		h.c.main.Metrics.XMPPStream(metrics.StreamResumeFailed)
	default:
		h.c.main.Metrics.XMPPStream(metrics.StreamBound)
	}
	if !st.Offered {
		log.Debug().Msg("XMPP server offers no stream management (XEP-0198)")
	}
}

// UnackedChecked implements xmppclient.ConnHooks.
func (h connHooks) UnackedChecked(ctx context.Context, u xmppclient.UnackedCheck) {
	zerolog.Ctx(ctx).Info().Int("unacknowledged", u.Unacked).Int("in_archive", u.InArchive).Int("resent", u.Resent).
		Int("skipped", u.Skipped).Int("failed", u.Failed).
		Msg("Checked the messages the lost XMPP stream had not acknowledged")
}

// unackedInArchive is the client's xmppclient.ArchiveLookup: the same
// look-ups as the Matrix → XMPP intake's after a crash, on the session
// being set up (the login is not ready yet).
func (c *Client) unackedInArchive(ctx context.Context, s *xmpp.Session, to jid.JID, room bool, id string, since time.Time) (bool, error) {
	return c.archiveHasSent(ctx, s, to, room, id, since)
}

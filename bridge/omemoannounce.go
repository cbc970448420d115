package bridge

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2/status"
	"mellium.im/xmpp"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
)

// stateOMEMONotAnnounced is the bridge state error of a login that is
// connected but whose OMEMO device could not be announced (for one version
// or both): contacts cannot encrypt to the bridge, and the user must know.
const stateOMEMONotAnnounced status.BridgeStateErrorCode = "xmpp-omemo-not-announced"

// announceFailureText says which versions are not announced, and why.
func announceFailureText(st map[omemo.Version]omemoxmpp.AnnounceResult) string {
	var failed []string
	for _, v := range []omemo.Version{omemo.V2, omemo.V03} {
		if r, ok := st[v]; ok && r.Err != nil {
			failed = append(failed, fmt.Sprintf("OMEMO %s (%v)", v, r.Err))
		}
	}
	if len(failed) == 0 {
		return ""
	}
	return "The XMPP server refused to publish the bridge's OMEMO device for " + strings.Join(failed, "; ") +
		": contacts cannot send encrypted messages to the bridge with that version. The bridge keeps retrying."
}

// announceStatusText is the line `omemo status` adds about our device.
func (c *Client) announceStatusText() string {
	oc := c.omemoClient()
	if oc == nil {
		return "The bridge's OMEMO device is not set up for this login yet."
	}
	st := oc.AnnounceStatus()
	if text := announceFailureText(st); text != "" {
		return text
	}
	var ok []string
	for _, v := range []omemo.Version{omemo.V2, omemo.V03} {
		if r, found := st[v]; found && r.Err == nil {
			ok = append(ok, v.String())
		}
	}
	if len(ok) == 0 {
		return fmt.Sprintf("The bridge's OMEMO device %d has not been announced yet.", oc.Manager().DeviceID())
	}
	slices.Sort(ok)
	return fmt.Sprintf("The bridge's OMEMO device %d is announced (OMEMO %s).", oc.Manager().DeviceID(), strings.Join(ok, " and "))
}

// connectedState is the CONNECTED bridge state, carrying the OMEMO
// announcement failure when there is one.
func (c *Client) connectedState() status.BridgeState {
	st := status.BridgeState{StateEvent: status.StateConnected}
	if oc := c.omemoClient(); oc != nil {
		if text := announceFailureText(oc.AnnounceStatus()); text != "" {
			st.Error, st.Message = stateOMEMONotAnnounced, text
		}
	}
	return st
}

// retryAnnounce has the client announce again while s is the login's
// session (xmppclient.OMEMO.RetryAnnounce). The login's CONNECTED state
// carries the failure (connectedState) until a retry succeeds.
func (c *Client) retryAnnounce(ctx context.Context, s *xmpp.Session) {
	log := zerolog.Ctx(ctx)
	c.omemo.RetryAnnounce(ctx, func() bool { return c.currentSession() == s }, func(err error) {
		c.sendState(c.connectedState())
		if err != nil {
			log.Warn().Err(err).Msg("OMEMO announcement failed again")
			return
		}
		if oc := c.omemoClient(); oc != nil {
			log.Info().Uint32("omemo_device_id", oc.Manager().DeviceID()).Msg("OMEMO device announced after a retry")
		}
		c.requeuePending(ctx)
	})
}

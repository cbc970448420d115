package bridge

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/portal"
)

// Device discovery that does not depend on a presence subscription: the
// server pushes a contact's device lists only to subscribers (and to
// clients whose +notify it matched with a subscription), so a contact's
// new device would stay unknown and the next message not encrypted for
// it. The bridge fetches the lists itself: before the first message to a
// contact (a chat starting), before encrypting when the lists it has are
// older than deviceListMaxAge, and when a message comes from a device not
// in them (decrypt.go).

// deviceListMaxAge bounds how old the device lists a message is encrypted
// with may be. One fetch per contact per this much time is cheap; a new
// device of the contact misses at most the messages of this window.
const deviceListMaxAge = 10 * time.Minute

// deviceFetches is when each login last fetched each contact's lists
// (key: login id and bare JID); deviceSubscriptions holds the contacts each
// login asked the server to push the lists of.
var deviceFetches, deviceSubscriptions sync.Map

func deviceFetchKey(login string, contact jid.JID) string {
	return login + "\x00" + contact.Bare().String()
}

// refreshDevices fetches contact's device lists when they were not fetched
// in deviceListMaxAge; on failure the stored lists stay in use. Not under
// the ratchet lock: it waits on the contact's server (as Prepare does).
func (c *Client) refreshDevices(ctx context.Context, oc *omemoxmpp.Client, contact jid.JID) omemoxmpp.DeviceSet {
	key := deviceFetchKey(string(c.login.ID), contact)
	if t, ok := deviceFetches.Load(key); ok && time.Since(t.(time.Time)) < deviceListMaxAge {
		set, _ := oc.Devices(ctx, contact)
		return set
	}
	if _, done := deviceSubscriptions.LoadOrStore(key, true); !done {
		// Pushes without a presence subscription, where the server allows
		// a stranger's subscription; the fetches above stay the fallback.
		go func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if err := oc.SubscribeDevices(sctx, contact); err != nil {
				zerolog.Ctx(ctx).Debug().Err(err).Stringer("contact", contact).Msg("Server refused a subscription to the contact's OMEMO device lists")
			}
		}()
	}
	set, err := oc.FetchDevices(ctx, contact)
	if err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Stringer("contact", contact).Msg("Failed to fetch OMEMO device lists; using the stored ones")
		return set
	}
	deviceFetches.Store(key, time.Now())
	return set
}

// forgetDeviceFetch makes the next encryption for contact fetch the lists
// again: a message came from a device that is not in them.
func (c *Client) forgetDeviceFetch(contact jid.JID) {
	deviceFetches.Delete(deviceFetchKey(string(c.login.ID), contact))
}

// learnSenderDevice fetches the sender's device lists when a message came
// from a device they do not list (the push that would have told us did
// not come), so the reply is encrypted for it too.
func (c *Client) learnSenderDevice(ctx context.Context, sender jid.JID, device uint32) {
	oc := c.omemoClient()
	if oc == nil || device == 0 {
		return
	}
	set, err := oc.Devices(ctx, sender)
	if err == nil && len(set[device]) > 0 {
		return
	}
	c.forgetDeviceFetch(sender)
	c.refreshDevices(ctx, oc, sender)
}

// encryptByDefault decides for a 1:1 chat that is neither on nor off
// (omemo.default): encrypted when the contact publishes OMEMO devices, and
// the chat is marked so; otherwise plaintext, and the room is told once.
func (c *Client) encryptByDefault(ctx context.Context, p *bridgev2.Portal, meta *portal.Metadata, contact jid.JID) (bool, error) {
	oc := c.omemoClient()
	if oc == nil {
		// OMEMO is not up for this login (yet): do not guess.
		return false, fmt.Errorf("failed to check whether %s uses OMEMO: %w", contact.Bare(), errOMEMOUnavailable)
	}
	set := c.refreshDevices(ctx, oc, contact)
	if len(set) > 0 {
		markEncrypted(meta)
		if err := p.Save(ctx); err != nil {
			zerolog.Ctx(ctx).Err(err).Msg("Failed to save portal after enabling OMEMO by default")
		}
		return true, nil
	}
	if !meta.PlainNoticed {
		meta.PlainNoticed = true
		if err := p.Save(ctx); err != nil {
			zerolog.Ctx(ctx).Err(err).Msg("Failed to save portal")
		}
		if p.MXID != "" {
			_, err := c.main.Bridge.Bot.SendMessage(ctx, p.MXID, event.EventMessage, &event.Content{
				Parsed: &event.MessageEventContent{MsgType: event.MsgNotice, Body: contact.Bare().String() +
					" publishes no OMEMO device: messages in this chat are sent NOT encrypted. They will be encrypted as soon as the contact has OMEMO (or `omemo on` refuses to send unencrypted)."},
			}, nil)
			if err != nil {
				zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to send the not-encrypted notice")
			}
		}
	}
	return false, nil
}

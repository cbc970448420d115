package xmppclient

import (
	"context"

	"github.com/rs/zerolog"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
	"github.com/mxomemo/xmpp-bridge/xmpp/pubsub"
)

// unannounce takes our OMEMO device out of account's published device
// lists (both versions), at logout, so that contacts stop encrypting for
// it: the lists are fetched fresh (into store), and each that names our
// device is published again without it. Failures are logged: the logout
// goes on.
func unannounce(ctx context.Context, s *xmpp.Session, oc *omemoxmpp.Client, account jid.JID, store omemo.Store) {
	log := zerolog.Ctx(ctx)
	own := oc.Manager().DeviceID()
	if _, err := oc.FetchDevices(ctx, account); err != nil {
		log.Warn().Err(err).Msg("Failed to fetch own OMEMO device lists before logout")
		return
	}
	for _, v := range []omemo.Version{omemo.V2, omemo.V03} {
		stored, err := store.DeviceList(ctx, v, account.Bare().String())
		if err != nil || stored == nil {
			continue
		}
		list := &omemo.DeviceList{Version: v}
		for _, d := range stored {
			if d.ID != own {
				list.Devices = append(list.Devices, d)
			}
		}
		if len(list.Devices) == len(stored) {
			continue
		}
		payload, err := omemoxmpp.DeviceListXML(list)
		if err == nil {
			_, err = pubsub.PublishReconfigure(ctx, s, v.DeviceListNode(), omemoxmpp.ItemCurrent,
				payload, pubsub.AccessModel(pubsub.AccessOpen))
		}
		if err != nil {
			log.Warn().Err(err).Str("omemo_version", v.String()).Msg("Failed to remove our device from the OMEMO device list")
		}
	}
}

// Unannounce takes our device out of the account's device lists on s
// (unannounce), before a logout; nothing without a session client.
func (o *OMEMO) Unannounce(ctx context.Context, s *xmpp.Session, store omemo.Store) {
	if oc, account := o.session(); oc != nil {
		unannounce(ctx, s, oc, account, store)
	}
}

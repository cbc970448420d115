package bridge

import (
	"context"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"

	"github.com/mxomemo/xmpp-bridge/msgconv"
	"github.com/mxomemo/xmpp-bridge/portal"
)

// GetCapabilities implements bridgev2.NetworkConnector.
func (xc *Connector) GetCapabilities() *bridgev2.NetworkGeneralCapabilities {
	return &bridgev2.NetworkGeneralCapabilities{
		Provisioning: bridgev2.ProvisioningCapabilities{
			ResolveIdentifier: bridgev2.ResolveIdentifierCapabilities{
				CreateDM:       true,
				LookupUsername: true,
				ContactList:    true,
			},
			GroupCreation: groupCreation(),
		},
	}
}

// dmFeatures is what a 1:1 XMPP chat supports: text (Matrix formatting
// flattened to a plain body, see msgconv.BodyFromMatrix), files, corrections,
// retractions, replies, reactions, read markers and typing.
var dmFeatures = &event.RoomFeatures{
	ID: "net.mxomemo.xmpp.capabilities.2026_11_30.5",
	Formatting: event.FormattingFeatureMap{
		event.FmtBold:          event.CapLevelPartialSupport,
		event.FmtItalic:        event.CapLevelPartialSupport,
		event.FmtStrikethrough: event.CapLevelPartialSupport,
		event.FmtInlineCode:    event.CapLevelPartialSupport,
		event.FmtCodeBlock:     event.CapLevelPartialSupport,
		event.FmtBlockquote:    event.CapLevelPartialSupport,
		event.FmtInlineLink:    event.CapLevelPartialSupport,
		event.FmtUnorderedList: event.CapLevelPartialSupport,
		event.FmtOrderedList:   event.CapLevelPartialSupport,
	},
	File:                msgconv.FileFeatures,
	MaxTextLength:       65536,
	Edit:                event.CapLevelFullySupported,
	Delete:              event.CapLevelFullySupported,
	Reply:               event.CapLevelFullySupported,
	Reaction:            event.CapLevelFullySupported,
	ReadReceipts:        true,
	TypingNotifications: true,
}

// groupFeatures is what a group chat supports today: text and files with
// corrections, replies, reactions and retractions of the user's own
// messages (mucrefs.go), typing and read receipts (mucsignals.go).
var groupFeatures = &event.RoomFeatures{
	ID:            "net.mxomemo.xmpp.capabilities.muc.2026_12_07.4",
	Formatting:    dmFeatures.Formatting,
	MaxTextLength: dmFeatures.MaxTextLength,
	File:          msgconv.FileFeatures,
	Edit:          event.CapLevelFullySupported,
	Delete:        event.CapLevelFullySupported,
	Reply:         event.CapLevelFullySupported,
	Reaction:      event.CapLevelFullySupported,

	ReadReceipts:        true,
	TypingNotifications: true,
}

// GetCapabilities implements bridgev2.NetworkAPI.
func (c *Client) GetCapabilities(ctx context.Context, p *bridgev2.Portal) *event.RoomFeatures {
	chat, err := portal.Parse(p.PortalKey)
	switch {
	case err == nil && chat.Kind == portal.MUC:
		return c.mediaFeatures(groupFeatures)
	case err == nil && chat.Kind == portal.PM:
		return c.mediaFeatures(pmFeatures)
	}
	return c.mediaFeatures(dmFeatures)
}

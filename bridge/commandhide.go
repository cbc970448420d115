package bridge

import (
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/commands"
)

// networkGatedCommands are bridgev2's built-in commands that only work when the login's
// NetworkAPI implements an optional interface.
var networkGatedCommands = []*commands.FullHandler{
	commands.CommandSearch,
	commands.CommandCreateGroup,
	commands.CommandImportImagePack,
	commands.CommandMute,
	commands.CommandDeleteChat,
	commands.CommandRegisterPush,
	commands.CommandStartChat,
	commands.CommandResolveIdentifier,
}

// unsupportedCommands replaces the network-gated built-in commands our Client does not
// implement with hidden ones that answer once that XMPP cannot do it. bridgev2 hides such a
// command from help only when the user has a login (before login, help listed search and
// import-image-pack), and import-image-pack answered twice (the "not supported" reply, then
// its usage). create-group is implemented (mucgroupcreate.go).
func unsupportedCommands() []commands.CommandHandler {
	var client bridgev2.NetworkAPI = (*Client)(nil)
	var out []commands.CommandHandler
	for _, h := range networkGatedCommands {
		if h.NetworkAPI == nil || h.NetworkAPI(client) {
			continue
		}
		name := h.Name
		out = append(out, &commands.FullHandler{
			Name:    name,
			Aliases: h.Aliases,
			Help:    h.Help,
			Func: func(ce *commands.Event) {
				ce.Reply("`%s` is not supported by the XMPP bridge.", name)
			},
			// Never fulfilled: the command is left out of help.
			NetworkConnector: func(bridgev2.NetworkConnector) bool { return false },
		})
	}
	return out
}

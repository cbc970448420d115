package bridge

import (
	"testing"

	"maunium.net/go/mautrix/bridgev2/commands"
)

func TestUnsupportedCommandsHidden(t *testing.T) {
	got := map[string]bool{}
	for _, h := range unsupportedCommands() {
		fh := h.(*commands.FullHandler)
		// ShowInHelp is ImplementationsFulfilled: the never-fulfilled connector check hides it
		// whether or not the user has a login.
		if fh.NetworkConnector(nil) {
			t.Errorf("%s is shown in help", fh.Name)
		}
		got[fh.Name] = true
	}
	for _, name := range []string{"search", "import-image-pack"} {
		if !got[name] {
			t.Errorf("%s is not replaced (XMPP has no such feature)", name)
		}
	}
	// Commands the Client does implement stay bridgev2's own.
	for _, name := range []string{"start-chat", "resolve-identifier", "create-group"} {
		if got[name] {
			t.Errorf("%s was hidden although it works", name)
		}
	}
}

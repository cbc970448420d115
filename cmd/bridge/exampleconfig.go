package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"text/template"

	"maunium.net/go/mautrix/bridgev2/matrix/mxmain"
)

// exampleConfigRequested reports whether the command line asks for the
// example config (-e / --generate-example-config) and where to write it
// (-c / --config, default config.yaml), as mxmain would parse them.
func exampleConfigRequested(args []string) (path string, ok bool) {
	path = "config.yaml"
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return path, ok
		case a == "-e" || a == "--generate-example-config" || a == "--generate-example-config=true":
			ok = true
		case a == "-c" || a == "--config":
			if i+1 < len(args) {
				path = args[i+1]
				i++
			}
		case strings.HasPrefix(a, "--config="):
			path = strings.TrimPrefix(a, "--config=")
		case strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && len(a) > 2:
			// Grouped short flags such as -ec path.
			flags := a[1:]
			if strings.ContainsRune(flags, 'e') {
				ok = true
			}
			if strings.HasSuffix(flags, "c") && i+1 < len(args) {
				path = args[i+1]
				i++
			}
		}
	}
	return path, ok
}

// exampleConfig is mxmain's full example config with the network section of
// our connector, end-to-bridge encryption allowed and on by default (OMEMO
// chats are bridged into encrypted rooms) with a cross-signed bot device, and
// history backfill on.
func exampleConfig(m *mxmain.BridgeMain) (string, error) {
	tpl, err := template.New("example-config.yaml").Delims("$<<", ">>").Parse(mxmain.MatrixExampleConfigBase)
	if err != nil {
		return "", fmt.Errorf("failed to parse mxmain's config template: %w", err)
	}
	networkExample, _, _ := m.Connector.GetConfig()
	var buf strings.Builder
	buf.WriteString("# Network-specific config options\nnetwork:\n")
	for _, line := range strings.Split(networkExample, "\n") {
		buf.WriteString("    " + line + "\n")
	}
	buf.WriteString("\n")
	if err := tpl.Execute(&buf, m.Connector.GetName()); err != nil {
		return "", fmt.Errorf("failed to render config template: %w", err)
	}
	cfg, err := enableEncryption(buf.String())
	if err != nil {
		return "", err
	}
	return enableBackfill(cfg)
}

var errBackfillTemplateChanged = errors.New("mxmain's backfill section changed; update enableBackfill")

// enableBackfill turns on history backfill of new portals from the
// account's archive (max_initial_messages stays at mxmain's 50); the
// backward queue stays off, as standard homeservers cannot insert history.
func enableBackfill(cfg string) (string, error) {
	old := "\nbackfill:\n    # Whether to do backfilling at all.\n    enabled: false\n"
	if strings.Count(cfg, old) != 1 {
		return "", errBackfillTemplateChanged
	}
	return strings.Replace(cfg, old, "\nbackfill:\n    # Whether to do backfilling at all.\n    enabled: true\n", 1), nil
}

var errTemplateChanged = errors.New("mxmain's encryption section changed; update enableEncryption")

func enableEncryption(cfg string) (string, error) {
	start := strings.Index(cfg, "\nencryption:\n")
	if start < 0 {
		return "", errTemplateChanged
	}
	head, section := cfg[:start], cfg[start:]
	// self_sign: the bot's device is cross-signed on first start, so that clients that only
	// trust cross-signed devices (Element's "exclude insecure devices") read and share keys.
	for _, key := range []string{"allow", "default", "self_sign"} {
		old := "\n    " + key + ": false\n"
		if !strings.Contains(section, old) {
			return "", errTemplateChanged
		}
		section = strings.Replace(section, old, "\n    "+key+": true\n", 1)
	}
	return head + section, nil
}

func writeExampleConfig(m *mxmain.BridgeMain, path string) int {
	cfg, err := exampleConfig(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if path == "-" {
		fmt.Print(cfg)
		return 0
	}
	if path != "/dev/stdout" && path != "/dev/stderr" {
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintln(os.Stderr, path, "already exists, please remove it if you want to generate a new example")
			return 1
		}
	}
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "Failed to write example config:", err)
		return 1
	}
	fmt.Println("Wrote example config to", path)
	return 0
}

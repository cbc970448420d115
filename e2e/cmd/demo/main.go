// Command demo is the Go half of scripts/demo.sh: it writes the demo bridge's config for the
// servers `scripts/testenv up` started, and then logs a Matrix user in through the bridge bot,
// sends one plain message each way, gives the contact an OMEMO 2 device (our own omemoxmpp
// client) and sends one OMEMO message each way. It exits non-zero when a step does not happen
// within its timeout.
//
//	demo config -env .testenv/env -dir .testenv/demo -bin BRIDGE
//	demo run -env .testenv/env -dir .testenv/demo -matrix-user ID -matrix-token TOKEN \
//	         -xmpp-user alice -xmpp-contact bob -xmpp-password-file FILE
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: demo config|run [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "config":
		err = configCmd(os.Args[2:])
	case "run":
		err = runCmd(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// readEnv reads the KEY='value' lines `scripts/testenv up` writes.
func readEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w (run scripts/testenv up first)", err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if ok {
			env[k] = strings.Trim(v, `'`)
		}
	}
	return env, sc.Err()
}

func need(env map[string]string, keys ...string) error {
	for _, k := range keys {
		if env[k] == "" {
			return fmt.Errorf("%s missing from the testenv env file", k)
		}
	}
	return nil
}

func configCmd(args []string) error {
	fs := flag.NewFlagSet("config", flag.ExitOnError)
	envPath := fs.String("env", ".testenv/env", "testenv env file")
	dir := fs.String("dir", ".testenv/demo", "bridge directory")
	bin := fs.String("bin", "", "bridge binary")
	port := fs.Int("port", 0, "appservice port on 127.0.0.1 (0: a free one)")
	_ = fs.Parse(args)
	env, err := readEnv(*envPath)
	if err != nil {
		return err
	}
	if err := need(env, "MATRIX_URL", "MATRIX_SERVER_NAME"); err != nil {
		return err
	}
	if *port == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		*port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	absDir, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	cfg := &harness.BridgeConfig{
		Dir:            absDir,
		HomeserverURL:  env["MATRIX_URL"],
		Domain:         env["MATRIX_SERVER_NAME"],
		AppservicePort: *port,
		Encryption:     true,
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := harness.WriteConfig(ctx, *bin, cfg); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(absDir, "provisioning-secret"), []byte(cfg.ProvisioningSecret), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(absDir, "appservice-url"), []byte(cfg.AppserviceURL()), 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %s and %s (SQLite database %s)\n", cfg.ConfigPath(), cfg.RegistrationPath(), cfg.DatabaseURI())
	return nil
}

func runCmd(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	envPath := fs.String("env", ".testenv/env", "testenv env file")
	userID := fs.String("matrix-user", "", "Matrix user ID")
	token := fs.String("matrix-token", "", "Matrix access token")
	xmppUser := fs.String("xmpp-user", "alice", "localpart of the XMPP account the Matrix user logs in to")
	xmppContact := fs.String("xmpp-contact", "bob", "localpart of the XMPP contact")
	contactName := fs.String("contact-name", "Bob", "roster name of the contact")
	pwFile := fs.String("xmpp-password-file", "", "file with lines LOCALPART PASSWORD")
	timeout := fs.Duration("timeout", 4*time.Minute, "overall timeout")
	stepTimeout := fs.Duration("step-timeout", 60*time.Second, "timeout of each OMEMO step")
	_ = fs.Parse(args)
	env, err := readEnv(*envPath)
	if err != nil {
		return err
	}
	if err := need(env, "MATRIX_URL", "MATRIX_SERVER_NAME", "XMPP_ADDR", "PROSODY_CERT", "XMPP_DOMAIN"); err != nil {
		return err
	}
	pws, err := readPasswords(*pwFile)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	domain := env["XMPP_DOMAIN"]
	alice := jid.MustParse(*xmppUser + "@" + domain)
	bob := jid.MustParse(*xmppContact + "@" + domain)
	phone, err := harness.DialPeer(ctx, env["XMPP_ADDR"], env["PROSODY_CERT"], mustResource(alice, "demo-setup"), pws[*xmppUser])
	if err != nil {
		return err
	}
	if err := phone.SetRosterName(ctx, bob, *contactName); err != nil {
		return err
	}
	phone.Close()
	bobC, err := harness.DialPeer(ctx, env["XMPP_ADDR"], env["PROSODY_CERT"], mustResource(bob, "demo"), pws[*xmppContact])
	if err != nil {
		return err
	}
	defer bobC.Close()

	u, err := harness.NewMatrixUser(env["MATRIX_URL"], id.UserID(*userID), *token)
	if err != nil {
		return err
	}
	defer u.Close()
	bot := id.NewUserID("xmppbot", env["MATRIX_SERVER_NAME"])
	fmt.Printf("Matrix: %s opens a DM with the bridge bot %s\n", u.UserID(), bot)
	mgmt, err := u.OpenManagementRoom(ctx, bot)
	if err != nil {
		return err
	}
	fmt.Printf("Matrix: %s sends `login` and answers the bot's prompts (JID %s, password, server %s, self-signed host localhost)\n", u.UserID(), alice, env["XMPP_ADDR"])
	res, err := u.Login(ctx, mgmt, bot, harness.LoginInput{
		JID: alice.String(), Password: pws[*xmppUser], Server: env["XMPP_ADDR"], InsecureHost: "localhost",
	})
	if err != nil {
		return err
	}
	fmt.Printf("bot:    %s\n", res.Answer)

	incoming := fmt.Sprintf("Hi from XMPP! (%s)", time.Now().Format("15:04:05"))
	fmt.Printf("\nXMPP → Matrix\n  %s sends to %s: %q\n", bobC.JID, alice, incoming)
	if err := bobC.SendChat(ctx, alice, "", "", incoming); err != nil {
		return err
	}
	ghost := harness.GhostMXID(bob.String(), env["MATRIX_SERVER_NAME"])
	room, err := u.FindRoomWith(ctx, ghost, mgmt)
	if err != nil {
		return err
	}
	evt, _, err := u.WaitEvent(ctx, room, 0, harness.IsMessage(ghost, incoming))
	if err != nil {
		return fmt.Errorf("the message did not reach Matrix: %w", err)
	}
	name := string(ghost)
	if resp, err := u.Client.GetDisplayName(ctx, ghost); err == nil && resp.DisplayName != "" {
		name = resp.DisplayName + " <" + string(ghost) + ">"
	}
	fmt.Printf("  arrived in Matrix room %s from %s: %q\n", room, name, harness.Body(evt))

	reply := "Hello back from Matrix!"
	fmt.Printf("\nMatrix → XMPP\n  %s sends in %s: %q\n", u.UserID(), room, reply)
	cur := bobC.Cursor()
	if _, err := u.Client.SendText(ctx, room, reply); err != nil {
		return err
	}
	m, _, err := bobC.WaitMessage(ctx, cur, func(m harness.ReceivedMessage) bool { return !m.Carbon && m.Body == reply })
	if err != nil {
		return fmt.Errorf("the reply did not reach XMPP: %w", err)
	}
	fmt.Printf("  %s received from %s: %q\n", bobC.JID, m.From, m.Body)

	od := &omemoDemo{
		u: u, bot: bot, mgmt: mgmt, room: room, ghost: ghost, ghostName: name, contact: bobC,
		alice: alice, bob: bob, stepTimeout: *stepTimeout,
	}
	if err := od.run(ctx); err != nil {
		return fmt.Errorf("OMEMO: %w", err)
	}
	fmt.Printf("DEMO_PORTAL_ROOM=%s\n", room)
	fmt.Println("DEMO_OMEMO_XMPP_TO_MATRIX=ok")
	fmt.Println("DEMO_OMEMO_MATRIX_TO_XMPP=ok")
	return nil
}

func mustResource(j jid.JID, res string) jid.JID {
	full, err := j.WithResource(res)
	if err != nil {
		panic(err)
	}
	return full
}

func readPasswords(path string) (map[string]string, error) {
	if path == "" {
		return nil, errors.New("-xmpp-password-file is required")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			out[f[0]] = f[1]
		}
	}
	return out, nil
}

package testenv

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestCLI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "env")
	run := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := CLI(append([]string{"--dir", dir}, args...), &out, &errb); code != 0 {
			t.Fatalf("testenv %v: exit %d: %s%s", args, code, out.String(), errb.String())
		}
		return out.String()
	}
	run("up")
	t.Cleanup(func() { CLI([]string{"--dir", dir, "down"}, os.Stdout, os.Stderr) })
	env, err := readEnv(filepath.Join(dir, "env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"XMPP_ADDR", "XMPP_DOMAIN", "MATRIX_URL", "MATRIX_SERVER_NAME", "PROSODY_PID", "DENDRITE_PID"} {
		if env[k] == "" {
			t.Errorf("env lacks %s", k)
		}
	}
	if got := run("account", "cli_user", "pw"); strings.TrimSpace(got) != "cli_user@localhost" {
		t.Fatalf("account: %q", got)
	}
	if got := run("matrix-user", "cliuser", "password"); !strings.HasPrefix(got, "@cliuser:localhost ") {
		t.Fatalf("matrix-user: %q", got)
	}
	var out, errb bytes.Buffer
	if CLI([]string{"--dir", dir, "up"}, &out, &errb) == 0 {
		t.Fatal("second up succeeded while running")
	}
	run("down")
	for _, k := range []string{"PROSODY_PID", "DENDRITE_PID"} {
		pid, _ := strconv.Atoi(env[k])
		if alive(pid) {
			t.Errorf("%s %d still alive after down", k, pid)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("dir left after down: %v", err)
	}
}

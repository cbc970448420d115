package testenv

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CLI is the testenv command (scripts/testenv): it keeps the servers running in a directory
// (default .testenv/ in the repository) between invocations, for the demo and for poking around.
//
//	up [--postgres] [--no-dendrite] [--registration FILE]   start servers, write DIR/env
//	dendrite --registration FILE                              restart Dendrite (same port) with a registration
//	account LOCALPART PASSWORD                                create an XMPP account
//	matrix-user LOCALPART PASSWORD                            register a Matrix user, print "USER_ID ACCESS_TOKEN"
//	status                                                    print DIR/env and which servers run
//	down [--keep]                                             stop the servers, remove DIR (unless --keep)
//
// It returns the exit code.
func CLI(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("testenv", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "state directory (default: .testenv in the repository)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: testenv [--dir DIR] up [--postgres] [--no-dendrite] [--registration FILE] | dendrite --registration FILE | account LOCALPART PASSWORD | matrix-user LOCALPART PASSWORD | status | down [--keep]")
	}
	if err := fs.Parse(args); err != nil || fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	if *dir == "" {
		root, err := repoRoot()
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		*dir = filepath.Join(root, ".testenv")
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	c := &cli{dir: abs, out: stdout}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	switch cmd {
	case "up":
		err = c.up(rest)
	case "dendrite":
		err = c.restartDendrite(rest)
	case "account":
		err = c.account(rest)
	case "matrix-user":
		err = c.matrixUser(rest)
	case "status":
		err = c.status()
	case "down":
		err = c.down(rest)
	default:
		fs.Usage()
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "testenv %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

type cli struct {
	dir string
	out io.Writer
}

func (c *cli) envPath() string { return filepath.Join(c.dir, "env") }

func (c *cli) up(args []string) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	withPG := fs.Bool("postgres", false, "also start PostgreSQL")
	noDendrite := fs.Bool("no-dendrite", false, "do not start Dendrite")
	reg := fs.String("registration", "", "appservice registration YAML for Dendrite")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if env, err := readEnv(c.envPath()); err == nil && len(c.running(env)) > 0 {
		return fmt.Errorf("already up in %s (%s); run down first", c.dir, strings.Join(c.running(env), ", "))
	}
	// Only ever wipe a directory this command made (it has an env file) or an empty one.
	if entries, err := os.ReadDir(c.dir); err == nil && len(entries) > 0 {
		if _, err := os.Stat(c.envPath()); err != nil {
			return fmt.Errorf("%s exists and is not a testenv directory; not touching it", c.dir)
		}
	}
	_ = os.RemoveAll(c.dir)
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	env := map[string]string{"TESTENV_DIR": c.dir}
	fail := func(err error) error {
		_ = writeEnv(c.envPath(), env)
		_ = c.stopAll(env)
		return err
	}

	start := time.Now()
	p, err := startProsody(filepath.Join(c.dir, "prosody"), ProsodyOptions{})
	if err != nil {
		return fail(fmt.Errorf("prosody: %w", err))
	}
	env["PROSODY_PID"] = strconv.Itoa(p.proc.cmd.Process.Pid)
	env["PROSODY_DIR"] = p.Dir()
	env["PROSODY_CONFIG"] = p.ConfigPath()
	env["PROSODY_CERT"] = p.CertFile()
	env["XMPP_DOMAIN"] = p.Domain()
	env["XMPP_HOST"] = p.Host()
	env["XMPP_PORT"] = strconv.Itoa(p.Port())
	env["XMPP_ADDR"] = p.Addr()
	env["XMPP_DIRECT_TLS_ADDR"] = p.DirectTLSAddr()
	env["XMPP_MUC_DOMAIN"] = p.MUCDomain()
	env["XMPP_UPLOAD_DOMAIN"] = p.UploadDomain()
	fmt.Fprintf(c.out, "prosody up on %s (%s)\n", p.Addr(), time.Since(start).Round(time.Millisecond))

	if *withPG {
		start = time.Now()
		pg, err := startPostgres("")
		if err != nil {
			if pg != nil {
				env["POSTGRES_DIR"] = pg.Dir()
			}
			return fail(fmt.Errorf("postgres: %w", err))
		}
		env["POSTGRES_DIR"] = pg.Dir()
		env["POSTGRES_BIN"] = pg.bin
		env["POSTGRES_URI"] = pg.URI()
		env["POSTGRES_PORT"] = strconv.Itoa(pg.Port())
		fmt.Fprintf(c.out, "postgres up on %s (%s)\n", pg.URI(), time.Since(start).Round(time.Millisecond))
	}
	if !*noDendrite {
		if err := c.startDendrite(env, *reg, 0); err != nil {
			return fail(err)
		}
	}
	if err := writeEnv(c.envPath(), env); err != nil {
		return fail(err)
	}
	fmt.Fprintf(c.out, "wrote %s\n", c.envPath())
	return nil
}

func (c *cli) startDendrite(env map[string]string, reg string, port int) error {
	start := time.Now()
	d, err := startDendrite(mkdir(filepath.Join(c.dir, "dendrite")), DendriteOptions{Registration: reg, Port: port})
	if err != nil {
		return fmt.Errorf("dendrite: %w", err)
	}
	env["DENDRITE_PID"] = strconv.Itoa(d.proc.cmd.Process.Pid)
	env["DENDRITE_DIR"] = d.Dir()
	env["DENDRITE_REGISTRATION"] = reg
	env["MATRIX_URL"] = d.URL()
	env["MATRIX_PORT"] = strconv.Itoa(d.Port())
	env["MATRIX_SERVER_NAME"] = d.ServerName()
	env["MATRIX_SHARED_SECRET"] = DendriteSharedSecret
	fmt.Fprintf(c.out, "dendrite up on %s (%s)\n", d.URL(), time.Since(start).Round(time.Millisecond))
	return nil
}

func mkdir(dir string) string {
	_ = os.MkdirAll(dir, 0o755)
	return dir
}

func (c *cli) restartDendrite(args []string) error {
	fs := flag.NewFlagSet("dendrite", flag.ContinueOnError)
	reg := fs.String("registration", "", "appservice registration YAML")
	if err := fs.Parse(args); err != nil {
		return err
	}
	env, err := readEnv(c.envPath())
	if err != nil {
		return fmt.Errorf("not up (%w); run up first", err)
	}
	port, _ := strconv.Atoi(env["MATRIX_PORT"])
	if pid, _ := strconv.Atoi(env["DENDRITE_PID"]); pid > 0 {
		stopPID(pid)
	}
	if err := c.startDendrite(env, *reg, port); err != nil {
		return err
	}
	return writeEnv(c.envPath(), env)
}

func (c *cli) account(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: account LOCALPART PASSWORD")
	}
	env, err := readEnv(c.envPath())
	if err != nil {
		return fmt.Errorf("not up (%w); run up first", err)
	}
	p := &Prosody{dir: env["PROSODY_DIR"], configPath: env["PROSODY_CONFIG"]}
	if err := p.createAccount(args[0], args[1]); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "%s@%s\n", args[0], p.Domain())
	return nil
}

func (c *cli) matrixUser(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: matrix-user LOCALPART PASSWORD")
	}
	env, err := readEnv(c.envPath())
	if err != nil || env["MATRIX_PORT"] == "" {
		return errors.New("dendrite not up; run up first")
	}
	port, _ := strconv.Atoi(env["MATRIX_PORT"])
	d := &Dendrite{port: port}
	uid, tok, err := d.registerUser(args[0], args[1], false)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.out, "%s %s\n", uid, tok)
	return nil
}

func (c *cli) status() error {
	env, err := readEnv(c.envPath())
	if err != nil {
		return fmt.Errorf("not up: %w", err)
	}
	b, _ := os.ReadFile(c.envPath())
	fmt.Fprint(c.out, string(b))
	fmt.Fprintf(c.out, "# running: %s\n", strings.Join(c.running(env), ", "))
	return nil
}

func (c *cli) down(args []string) error {
	keep := len(args) == 1 && args[0] == "--keep"
	env, err := readEnv(c.envPath())
	if err != nil {
		if os.IsNotExist(err) {
			fmt.Fprintln(c.out, "not up")
			return nil
		}
		return err
	}
	if err := c.stopAll(env); err != nil {
		return err
	}
	if !keep {
		if d := env["POSTGRES_DIR"]; d != "" {
			_ = os.RemoveAll(d)
		}
		_ = os.RemoveAll(c.dir)
	}
	fmt.Fprintln(c.out, "down")
	return nil
}

// running lists the servers of env whose processes are alive.
func (c *cli) running(env map[string]string) []string {
	var names []string
	for _, k := range []string{"PROSODY", "DENDRITE"} {
		if pid, _ := strconv.Atoi(env[k+"_PID"]); pid > 0 && alive(pid) {
			names = append(names, strings.ToLower(k))
		}
	}
	if d := env["POSTGRES_DIR"]; d != "" {
		if _, err := os.Stat(filepath.Join(d, "data", "postmaster.pid")); err == nil {
			names = append(names, "postgres")
		}
	}
	return names
}

func (c *cli) stopAll(env map[string]string) error {
	for _, k := range []string{"DENDRITE_PID", "PROSODY_PID"} {
		if pid, _ := strconv.Atoi(env[k]); pid > 0 {
			stopPID(pid)
		}
	}
	if d := env["POSTGRES_DIR"]; d != "" {
		bin := env["POSTGRES_BIN"]
		if bin == "" {
			bin, _ = pgBinDir()
		}
		pg := &Postgres{dir: d, bin: bin}
		if os.Geteuid() == 0 {
			pg.runAs = []string{"runuser", "-u", "postgres", "--"}
		}
		pg.Stop()
	}
	return nil
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// stopPID stops a server started by up: SIGTERM to its process group, SIGKILL after 10 s.
func stopPID(pid int) {
	if !alive(pid) {
		return
	}
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	for i := 0; i < 100 && alive(pid); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if alive(pid) {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

func readEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
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

// writeEnv writes a file both `source`-able by shells and readable by readEnv.
func writeEnv(path string, env map[string]string) error {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# written by scripts/testenv up; source it: . .testenv/env\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "export %s='%s'\n", k, strings.ReplaceAll(env[k], "'", ""))
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	_ "github.com/lib/pq" // driver for CreateDatabase and readiness checks
)

// Postgres is a throwaway PostgreSQL cluster on 127.0.0.1 with trust authentication and fsync off.
type Postgres struct {
	dir     string
	port    int
	bin     string
	runAs   []string
	logPath string
}

// pgBinDir finds the newest installed PostgreSQL server binaries.
func pgBinDir() (string, error) {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	best, bestV := "", -1
	for _, m := range matches {
		v, err := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(m))))
		if err == nil && v > bestV {
			best, bestV = filepath.Dir(m), v
		}
	}
	if best == "" {
		if p, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
		return "", fmt.Errorf("initdb not found: run scripts/install-deps.sh (as root)")
	}
	return best, nil
}

// StartPostgres initialises and starts a cluster and removes it when t ends. As root, the server
// runs as the postgres user (PostgreSQL refuses root), in a directory outside t.TempDir (whose
// parents that user cannot enter).
func StartPostgres(t TB) *Postgres {
	t.Helper()
	pg, err := startPostgres("")
	if err != nil {
		t.Fatalf("testenv: postgres: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testenv: --- postgres log (%s) ---\n%s", pg.logPath, tail(pg.logPath, logTail))
		}
		pg.Stop()
		_ = os.RemoveAll(pg.dir)
	})
	return pg
}

// startPostgres creates a cluster in dir (a new temp dir when empty) and starts it.
func startPostgres(dir string) (*Postgres, error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "mxomemo-pg-"); err != nil {
			return nil, fmt.Errorf("failed to create dir: %w", err)
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create dir: %w", err)
	}
	pg := &Postgres{dir: dir, bin: bin, logPath: filepath.Join(dir, "postgres.log")}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the postgres user (Debian package postgresql): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, fmt.Errorf("failed to chown %s: %w", dir, err)
		}
		pg.runAs = []string{"runuser", "-u", "postgres", "--"}
	}
	if out, err := pg.run("initdb", "-D", pg.dataDir(), "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--locale=C.UTF-8", "--no-sync"); err != nil {
		return pg, fmt.Errorf("initdb failed: %w\n%s", err, out)
	}
	for attempt := 0; ; attempt++ {
		if pg.port, err = freePort(); err != nil {
			return pg, err
		}
		out, err := pg.run("pg_ctl", "-D", pg.dataDir(), "-l", pg.logPath, "-w", "-t", "60", "-o",
			fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200", pg.port, dir),
			"start")
		if err == nil {
			break
		}
		if attempt == 2 || !portConflict(pg.logPath) {
			return pg, fmt.Errorf("pg_ctl start failed: %w\n%s\n--- postgres log ---\n%s", err, out, tail(pg.logPath, logTail))
		}
	}
	db, err := sql.Open("postgres", pg.URI())
	if err != nil {
		return pg, err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		pg.Stop()
		return pg, fmt.Errorf("started but not answering on %s: %w\n--- postgres log ---\n%s", pg.URI(), err, tail(pg.logPath, logTail))
	}
	return pg, nil
}

func (pg *Postgres) dataDir() string { return filepath.Join(pg.dir, "data") }

func (pg *Postgres) run(tool string, args ...string) ([]byte, error) {
	argv := append(append(append([]string{}, pg.runAs...), filepath.Join(pg.bin, tool)), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = pg.dir
	return cmd.CombinedOutput()
}

// Stop stops the server (fast shutdown). The cleanup calls it.
func (pg *Postgres) Stop() {
	if _, err := os.Stat(filepath.Join(pg.dataDir(), "postmaster.pid")); err != nil {
		return
	}
	_, _ = pg.run("pg_ctl", "-D", pg.dataDir(), "-m", "fast", "-w", "-t", "30", "stop")
}

// URI is the superuser URI of the "postgres" database.
func (pg *Postgres) URI() string { return pg.dbURI("postgres") }

// Port is the TCP port on 127.0.0.1.
func (pg *Postgres) Port() int { return pg.port }

// Dir is the cluster's directory (data/, postgres.log).
func (pg *Postgres) Dir() string { return pg.dir }

func (pg *Postgres) dbURI(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", pg.port, name)
}

var dbNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// CreateDatabase creates an empty database and returns its URI. Names are lower-case identifiers.
func (pg *Postgres) CreateDatabase(t TB, name string) string {
	t.Helper()
	uri, err := pg.createDatabase(name)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return uri
}

func (pg *Postgres) createDatabase(name string) (string, error) {
	if !dbNameRE.MatchString(name) {
		return "", fmt.Errorf("bad database name %q: use [a-z_][a-z0-9_]*", name)
	}
	db, err := sql.Open("postgres", pg.URI())
	if err != nil {
		return "", err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, `CREATE DATABASE "`+name+`"`); err != nil {
		return "", fmt.Errorf("failed to create database %s: %w", name, err)
	}
	return pg.dbURI(name), nil
}

// Log returns the server log so far.
func (pg *Postgres) Log() string {
	b, _ := os.ReadFile(pg.logPath)
	return strings.ToValidUTF8(string(b), "?")
}

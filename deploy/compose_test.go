package deploy

import (
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// composeFile is the part of docker-compose.example.yml the wiring checks read.
type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Environment map[string]string `yaml:"environment"`
		DependsOn   map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		Volumes     []string `yaml:"volumes"`
		Healthcheck *struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
	Configs map[string]struct {
		Content string `yaml:"content"`
	} `yaml:"configs"`
}

const composePath = "../docker-compose.example.yml"

func readCompose(t *testing.T) (composeFile, string) {
	t.Helper()
	raw, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf("%s is not valid YAML: %v", composePath, err)
	}
	for _, name := range []string{"postgres", "synapse", "xmpp-bridge"} {
		if _, ok := c.Services[name]; !ok {
			t.Fatalf("%s has no service %q", composePath, name)
		}
	}
	return c, string(raw)
}

// Every image names an explicit tag, and none is :latest (an untagged image is :latest too).
func TestComposeImagesPinned(t *testing.T) {
	c, _ := readCompose(t)
	for name, svc := range c.Services {
		if svc.Image == "" {
			t.Errorf("service %s has no image", name)
			continue
		}
		ref := svc.Image
		if i := strings.LastIndex(ref, "/"); i >= 0 {
			ref = ref[i+1:] // a registry host:port is not a tag
		}
		repo, tag, ok := strings.Cut(ref, ":")
		if !ok || tag == "" || repo == "" {
			t.Errorf("service %s: image %q has no tag (that is :latest)", name, svc.Image)
		} else if tag == "latest" {
			t.Errorf("service %s: image %q follows :latest; pin a release", name, svc.Image)
		}
	}
	if img := c.Services["synapse"].Image; !regexp.MustCompile(`^matrixdotorg/synapse:v\d+\.\d+\.\d+$`).MatchString(img) {
		t.Errorf("synapse image %q is not a vX.Y.Z release of matrixdotorg/synapse", img)
	}
}

// The bridge gets a database and user of its own, made by the init SQL postgres runs, and is not
// started before PostgreSQL is healthy.
func TestComposeBridgeDatabase(t *testing.T) {
	c, _ := readCompose(t)
	pg, br := c.Services["postgres"], c.Services["xmpp-bridge"]
	synapseDB, synapseUser := pg.Environment["POSTGRES_DB"], pg.Environment["POSTGRES_USER"]
	if synapseDB == "" || synapseUser == "" {
		t.Fatalf("postgres has no POSTGRES_DB/POSTGRES_USER: %v", pg.Environment)
	}
	uri, err := url.Parse(br.Environment["DATABASE_URI"])
	if err != nil || (uri.Scheme != "postgres" && uri.Scheme != "postgresql") {
		t.Fatalf("xmpp-bridge DATABASE_URI %q is not a postgres:// URI (%v)", br.Environment["DATABASE_URI"], err)
	}
	db, user := strings.TrimPrefix(uri.Path, "/"), uri.User.Username()
	if db == "" || user == "" {
		t.Fatalf("DATABASE_URI %q names no database or user", uri.Redacted())
	}
	if db == synapseDB {
		t.Errorf("the bridge's database %q is Synapse's (POSTGRES_DB); it needs one of its own", db)
	}
	if user == synapseUser {
		t.Errorf("the bridge connects as Synapse's user %q", user)
	}
	if uri.Hostname() != "postgres" {
		t.Errorf("DATABASE_URI host %q is not the postgres service", uri.Hostname())
	}
	if pg.Healthcheck == nil || len(pg.Healthcheck.Test) == 0 {
		t.Error("postgres has no healthcheck, so service_healthy never holds")
	}
	if cond := br.DependsOn["postgres"].Condition; cond != "service_healthy" {
		t.Errorf("xmpp-bridge depends on postgres with condition %q, want service_healthy", cond)
	}
	if cond := c.Services["synapse"].DependsOn["postgres"].Condition; cond != "service_healthy" {
		t.Errorf("synapse depends on postgres with condition %q, want service_healthy", cond)
	}

	// The init SQL mounted into postgres creates exactly that user and database.
	var initSQL string
	for _, cfg := range c.Configs {
		initSQL += cfg.Content
	}
	if !regexp.MustCompile(`(?i)CREATE USER ` + regexp.QuoteMeta(user) + `\b`).MatchString(initSQL) {
		t.Errorf("no init SQL creates the bridge's user %q", user)
	}
	if !regexp.MustCompile(`(?i)CREATE DATABASE ` + regexp.QuoteMeta(db) + ` OWNER ` + regexp.QuoteMeta(user) + `\b`).MatchString(initSQL) {
		t.Errorf("no init SQL creates the bridge's database %q owned by %q", db, user)
	}
	if pw, _ := uri.User.Password(); pw == "" || !strings.Contains(initSQL, "'"+pw+"'") {
		t.Error("the init SQL does not give the bridge's user the password in DATABASE_URI")
	}
}

// The bridge keeps its state in a volume at /data, and Synapse reads the registration from the
// same host directory, read-only.
func TestComposeVolumes(t *testing.T) {
	c, _ := readCompose(t)
	var bridgeData string
	for _, v := range c.Services["xmpp-bridge"].Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == "/data" {
			bridgeData = parts[0]
			if len(parts) > 2 && strings.Contains(parts[2], "ro") {
				t.Errorf("the bridge's /data is mounted read-only: %q", v)
			}
		}
	}
	if bridgeData == "" {
		t.Fatalf("xmpp-bridge mounts nothing at /data: %v", c.Services["xmpp-bridge"].Volumes)
	}
	found := false
	for _, v := range c.Services["synapse"].Volumes {
		parts := strings.Split(v, ":")
		if len(parts) == 3 && parts[0] == bridgeData && parts[1] == "/bridges/xmpp" {
			found = true
			if parts[2] != "ro" {
				t.Errorf("synapse mounts the bridge's data dir writable: %q", v)
			}
		}
	}
	if !found {
		t.Errorf("synapse does not mount the bridge's data dir %s at /bridges/xmpp", bridgeData)
	}
}

// The documented first-run commands use `run --rm --no-deps`: `run` alone would start Synapse
// (a dependency) before the registration it loads exists.
func TestComposeFirstRunCommandsNoDeps(t *testing.T) {
	_, raw := readCompose(t)
	doc, err := os.ReadFile("../docs/docker.md")
	if err != nil {
		t.Fatal(err)
	}
	runLine := regexp.MustCompile(`docker compose run [^\n]*`)
	for _, src := range []struct{ name, text string }{{composePath, raw}, {"docs/docker.md", string(doc)}} {
		lines := runLine.FindAllString(src.text, -1)
		if len(lines) < 2 {
			t.Errorf("%s documents no `docker compose run` first-run steps", src.name)
		}
		for _, l := range lines {
			if !strings.Contains(l, "run --rm --no-deps") {
				t.Errorf("%s: %q lacks --rm --no-deps", src.name, l)
			}
		}
	}
}

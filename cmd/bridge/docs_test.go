package main

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mxomemo/xmpp-bridge/bridge"
)

// networkKeys lists the leaf keys of the network section's example config, nested ones joined
// with dots (omemo.trust_policy).
func networkKeys(t *testing.T) []string {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(bridge.ExampleConfig), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		t.Fatal("the network example config is not a mapping")
	}
	var keys []string
	var walk func(prefix string, m *yaml.Node)
	walk = func(prefix string, m *yaml.Node) {
		for i := 0; i+1 < len(m.Content); i += 2 {
			key, val := prefix+m.Content[i].Value, m.Content[i+1]
			if val.Kind == yaml.MappingNode {
				walk(key+".", val)
				continue
			}
			keys = append(keys, key)
		}
	}
	walk("", doc.Content[0])
	sort.Strings(keys)
	return keys
}

// docs/configuration.md's `network:` table names exactly the keys of the network section.
func TestDocsListEveryNetworkKey(t *testing.T) {
	raw, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	start := strings.Index(doc, "\n## `network:`")
	if start < 0 {
		t.Fatal("docs/configuration.md has no \"## `network:`\" section")
	}
	section := doc[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z0-9_.]+)` \\|").FindAllStringSubmatch(section, -1) {
		documented[m[1]] = true
	}
	keys := networkKeys(t)
	if len(keys) < 5 {
		t.Fatalf("only %d network keys found: %v", len(keys), keys)
	}
	for _, k := range keys {
		if !documented[k] {
			t.Errorf("network.%s (bridge/example-config.yaml) has no row in the network table of docs/configuration.md", k)
		}
		delete(documented, k)
	}
	for k := range documented {
		t.Errorf("docs/configuration.md documents network.%s, which the example config does not have", k)
	}
	if strings.Contains(section, "will appear") {
		t.Error("docs/configuration.md still promises network options that \"will appear\"")
	}
}

// docs/backups.md names every table of our own schema (migrations/*.sql), so an admin knows
// what each holds and what losing it costs.
func TestDocsBackupsNameEveryTable(t *testing.T) {
	doc, err := os.ReadFile("../../docs/backups.md")
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("../../migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations found (%v)", err)
	}
	create := regexp.MustCompile(`(?im)^\s*CREATE TABLE (?:IF NOT EXISTS )?"?([a-z0-9_]+)`)
	n := 0
	for _, f := range files {
		sql, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range create.FindAllStringSubmatch(string(sql), -1) {
			n++
			if !strings.Contains(string(doc), "`"+m[1]+"`") {
				t.Errorf("table %s (%s) is not named in docs/backups.md", m[1], filepath.Base(f))
			}
		}
	}
	if n == 0 {
		t.Fatal("no CREATE TABLE found in migrations/*.sql")
	}
}

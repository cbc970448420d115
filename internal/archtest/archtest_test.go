package archtest

import (
	"bufio"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/mxomemo/xmpp-bridge"

// maxLines is the most a non-test Go file may have.
const maxLines = 600

// rules says, per package (a module-relative folder; a rule for "xmpp"
// covers every package below it), which imports it must never have: ours
// as module-relative folders, others by import path prefix. It is the
// table of docs/architecture.md.
var rules = []struct {
	pkg    string
	forbid []string
}{
	{"omemo", []string{"."}}, // nothing of ours
	{"omemostore", []string{"bridge", "omemoxmpp", "xmppclient", "msgconv", "portal", "puppet"}},
	{"omemoxmpp", []string{"bridge", "xmppclient", "msgconv", "portal", "puppet", "maunium.net/go/mautrix"}},
	{"xmpp", []string{"bridge", "omemo", "omemostore", "omemoxmpp", "xmppclient", "msgconv", "portal", "puppet", "maunium.net/go/mautrix"}},
	{"xmppclient", []string{"bridge", "msgconv", "portal", "puppet", "maunium.net/go/mautrix"}},
	{"msgconv", []string{"bridge", "xmppclient", "omemo", "omemostore", "omemoxmpp"}},
	{"portal", []string{"bridge", "puppet", "xmppclient", "msgconv", "omemo", "omemostore", "omemoxmpp"}},
	{"puppet", []string{"bridge", "portal", "xmppclient", "msgconv", "omemo", "omemostore", "omemoxmpp"}},
	{"bridge", []string{"cmd", "e2e", "deploy"}},
	{"internal/pgstmt", []string{"bridge", "deploy", "omemo", "omemostore", "omemoxmpp", "xmpp", "xmppclient", "msgconv", "portal", "puppet", "migrations", "metrics", "maunium.net/go/mautrix"}},
}

// xmlImports are what only the protocol client and the xmpp/* packages
// may use: stanzas and XML are read and written there, not in bridge/.
var xmlImports = []string{
	"encoding/xml",
	"mellium.im/xmlstream",
	"mellium.im/xmpp/stanza",
	module + "/xmpp/stanzabuf",
}

type goFile struct {
	path    string // module-relative, slash-separated
	pkg     string // module-relative folder
	test    bool
	imports []string
	lines   int
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil || !strings.Contains(string(data), "module "+module+"\n") {
		t.Fatalf("../.. is not the module root: %v", err)
	}
	return dir
}

func readFiles(t *testing.T) []goFile {
	t.Helper()
	root := moduleRoot(t)
	var files []goFile
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); p != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		gf := goFile{path: rel, pkg: filepath.ToSlash(filepath.Dir(rel)), test: strings.HasSuffix(p, "_test.go")}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			gf.imports = append(gf.imports, path)
		}
		if gf.lines, err = countLines(p); err != nil {
			return err
		}
		files = append(files, gf)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 100 {
		t.Fatalf("only %d Go files found under %s", len(files), root)
	}
	return files
}

func countLines(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		n++
	}
	return n, sc.Err()
}

// under reports whether folder pkg is dir or below it ("." is the module).
func under(pkg, dir string) bool {
	return dir == "." || pkg == dir || strings.HasPrefix(pkg, dir+"/")
}

// forbidden reports whether imp, imported by a file of folder pkg, is
// forbid: one of our folders (or anything of ours but pkg itself, for
// "."), or an outside import path prefix (it has a dot: a domain).
func forbidden(pkg, imp, forbid string) bool {
	rel, ours := strings.CutPrefix(imp, module)
	if !ours {
		return strings.Contains(forbid, ".") && forbid != "." && (imp == forbid || strings.HasPrefix(imp, forbid+"/"))
	}
	rel = strings.TrimPrefix(rel, "/")
	if forbid == "." {
		return !under(rel, pkg)
	}
	return !strings.Contains(forbid, ".") && under(rel, forbid)
}

// TestNoUpwardImports: no package imports what the table forbids it
// (tests included: a test that needs the layer above belongs there).
func TestNoUpwardImports(t *testing.T) {
	checked := 0
	for _, f := range readFiles(t) {
		for _, r := range rules {
			if !under(f.pkg, r.pkg) {
				continue
			}
			checked++
			for _, imp := range f.imports {
				for _, fb := range r.forbid {
					if forbidden(r.pkg, imp, fb) {
						t.Errorf("%s imports %s (%s must never import %s)", f.path, imp, r.pkg, fb)
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no file matched any rule")
	}
}

// TestBridgeHasNoXML: bridge/ is glue; stanzas and XML are built and read
// in xmppclient and xmpp/*.
func TestBridgeHasNoXML(t *testing.T) {
	checked := 0
	for _, f := range readFiles(t) {
		if f.pkg != "bridge" || f.test {
			continue
		}
		checked++
		for _, imp := range f.imports {
			for _, x := range xmlImports {
				if imp == x {
					t.Errorf("%s imports %s: stanzas and XML belong in xmppclient or xmpp/*", f.path, imp)
				}
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d files of bridge/ checked", checked)
	}
}

// TestFileSize: small files named by role; no non-test Go file over
// maxLines lines.
func TestFileSize(t *testing.T) {
	var long []string
	for _, f := range readFiles(t) {
		if !f.test && f.lines > maxLines {
			long = append(long, f.path+" ("+strconv.Itoa(f.lines)+" lines)")
		}
	}
	sort.Strings(long)
	for _, l := range long {
		t.Errorf("%s: over %d lines, split it by role", l, maxLines)
	}
}

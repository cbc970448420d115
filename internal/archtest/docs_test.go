package archtest

import (
	"go/ast"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// architectureDoc is the map the names of which are checked against the code.
const architectureDoc = "docs/architecture.md"

// declared collects what the module's non-test Go files declare, under
// the keys a document uses: "pkg.Name" (pkg is the folder's last element),
// "Type.Method", "Type.Field", and the bare name.
func declared(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	add := func(pkg, name string) {
		names[name] = true
		names[path.Base(pkg)+"."+name] = true
	}
	for _, f := range parseAll(t, func(string) bool { return true }) {
		for _, d := range f.ast.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil || len(d.Recv.List) == 0 {
					add(f.pkg, d.Name.Name)
					continue
				}
				typ := d.Recv.List[0].Type
				if st, ok := typ.(*ast.StarExpr); ok {
					typ = st.X
				}
				if id, ok := typ.(*ast.Ident); ok {
					names[d.Name.Name] = true
					add(f.pkg, id.Name+"."+d.Name.Name)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						add(f.pkg, s.Name.Name)
						if st, ok := s.Type.(*ast.StructType); ok {
							for _, fld := range st.Fields.List {
								for _, n := range fld.Names {
									add(f.pkg, s.Name.Name+"."+n.Name)
								}
							}
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							add(f.pkg, n.Name)
						}
					}
				}
			}
		}
	}
	return names
}

var (
	codeFence   = regexp.MustCompile("(?s)```.*?```")
	codeSpan    = regexp.MustCompile("`([^`\n]+)`")
	qualified   = regexp.MustCompile(`^[a-z][a-z0-9]*(\.[A-Z]\w*)+$`) // xmppclient.Outgoing.Stanza
	member      = regexp.MustCompile(`^[A-Z]\w*\.[A-Z]\w*$`)          // Conn.Run
	unexported  = regexp.MustCompile(`^[a-z]+[A-Z]\w*$`)              // decryptOMEMO
	callSpan    = regexp.MustCompile(`^([A-Za-z]\w*)\(`)              // Send(ctx, …)
	sqlTable    = regexp.MustCompile(`^[a-z]+(_[a-z]+)+$`)            // omemo_inbox
	goFileGlob  = regexp.MustCompile(`^[\w./*-]+\.go$`)
	sqlFileName = regexp.MustCompile(`^migrations/[\w.-]+\.sql$`)
)

// bridgev2Tables are tables the document names that bridgev2 owns.
var bridgev2Tables = map[string]bool{"user_login": true}

// TestArchitectureDocNamesExist: every file, function, type, method and
// table docs/architecture.md names in a code span exists, so that the map
// cannot drift from the code unnoticed.
func TestArchitectureDocNamesExist(t *testing.T) {
	root := moduleRoot(t)
	doc, err := os.ReadFile(filepath.Join(root, architectureDoc))
	if err != nil {
		t.Fatal(err)
	}
	names := declared(t)
	var files []string
	ours := map[string]bool{} // our packages by the name a document uses
	for _, f := range readFiles(t) {
		files = append(files, f.path)
		ours[path.Base(f.pkg)] = true
	}
	var schema strings.Builder
	sqls, _ := filepath.Glob(filepath.Join(root, "migrations", "*.sql"))
	for _, p := range sqls {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		schema.Write(b)
	}
	fileExists := func(pattern string) bool {
		for _, f := range files {
			target := f
			if !strings.Contains(pattern, "/") {
				target = path.Base(f)
			}
			if ok, _ := path.Match(pattern, target); ok {
				return true
			}
		}
		return false
	}
	checked := 0
	for _, m := range codeSpan.FindAllStringSubmatch(codeFence.ReplaceAllString(string(doc), ""), -1) {
		span := m[1]
		if c := callSpan.FindStringSubmatch(span); c != nil {
			span = c[1]
		}
		var ok bool
		switch {
		case goFileGlob.MatchString(span):
			ok = fileExists(span)
		case sqlFileName.MatchString(span):
			_, err := os.Stat(filepath.Join(root, span))
			ok = err == nil
		case qualified.MatchString(span):
			if first, _, _ := strings.Cut(span, "."); !ours[first] {
				continue // context.Background and the like
			}
			ok = names[span] // pkg.Name, or pkg.Type.Method
		case member.MatchString(span), unexported.MatchString(span):
			ok = names[span]
		case sqlTable.MatchString(span):
			ok = bridgev2Tables[span] || strings.Contains(schema.String(), span)
		default:
			continue // a package, an import path, a word
		}
		checked++
		if !ok {
			t.Errorf("%s names `%s`, which the code does not have", architectureDoc, m[1])
		}
	}
	t.Logf("%d names checked", checked)
	if checked < 40 {
		t.Fatalf("only %d names checked in %s", checked, architectureDoc)
	}
}

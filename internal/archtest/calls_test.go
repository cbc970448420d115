package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// parsedFile is a non-test Go file with its syntax tree.
type parsedFile struct {
	goFile
	ast *ast.File
}

// parseAll parses every non-test Go file of the module whose folder
// keep accepts.
func parseAll(t *testing.T, keep func(pkg string) bool) []parsedFile {
	t.Helper()
	root := moduleRoot(t)
	var out []parsedFile
	for _, f := range readFiles(t) {
		if f.test || !keep(f.pkg) {
			continue
		}
		tree, err := parser.ParseFile(token.NewFileSet(), filepath.Join(root, filepath.FromSlash(f.path)), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, parsedFile{goFile: f, ast: tree})
	}
	return out
}

// importNames maps the name a file uses for each import to its path.
func importNames(f *ast.File) map[string]string {
	names := map[string]string{}
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		name := path[strings.LastIndex(path, "/")+1:]
		if imp.Name != nil {
			name = imp.Name.Name
		}
		names[name] = path
	}
	return names
}

// pkgCalls calls fn for every call of a package-level function of another
// package (pkg.Func(…)) in f, with the package's import path.
func pkgCalls(f *ast.File, fn func(path, name string)) {
	pkgCallsIn(f, f, fn)
}

// pkgCallsIn is pkgCalls for the part in of f.
func pkgCallsIn(f *ast.File, in ast.Node, fn func(path, name string)) {
	names := importNames(f)
	ast.Inspect(in, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if id, ok := sel.X.(*ast.Ident); ok {
			if path, ok := names[id.Name]; ok {
				fn(path, sel.Sel.Name)
			}
		}
		return true
	})
}

// rootContextAllowed are the functions ("file func") that may start a
// context tree of their own outside package main and the test support,
// each with its reason.
var rootContextAllowed = map[string]string{
	"bridge/client.go backgroundCtx": "the fallback for unit tests, which build a Connector without a started bridge",
}

// testSupport are folders of non-test files that only tests use.
var testSupport = []string{"e2e", "internal/testenv", "xmpp/internal/fakesession"}

// TestNoRootContext: work the bridge starts on its own runs under
// bridgev2's BackgroundCtx (cancelled when the bridge stops, carrying the
// logger), or a context handed down to it; context.Background and
// context.TODO are for main and tests.
func TestNoRootContext(t *testing.T) {
	files := parseAll(t, func(pkg string) bool {
		for _, dir := range testSupport {
			if under(pkg, dir) {
				return false
			}
		}
		return true
	})
	checked := 0
	for _, f := range files {
		if f.ast.Name.Name == "main" {
			continue
		}
		checked++
		for _, d := range f.ast.Decls {
			where := f.path
			if fd, ok := d.(*ast.FuncDecl); ok {
				where += " " + fd.Name.Name
			}
			pkgCallsIn(f.ast, d, func(path, name string) {
				if path != "context" || (name != "Background" && name != "TODO") {
					return
				}
				if _, ok := rootContextAllowed[where]; ok {
					return
				}
				t.Errorf("%s calls context.%s: use bridgev2's BackgroundCtx or the caller's context", where, name)
			})
		}
	}
	if checked < 100 {
		t.Fatalf("only %d files checked", checked)
	}
}

// sessionIO are the methods of mellium's *xmpp.Session that read or write
// the stream; bridge/ leaves them to xmppclient. (Send and SendMessage
// are left out: the connector's Send and bridgev2's MatrixAPI have them.)
var sessionIO = map[string]bool{
	"SendElement": true, "SendIQ": true, "SendIQElement": true, "SendMessageElement": true,
	"SendPresence": true, "SendPresenceElement": true, "Encode": true, "EncodeElement": true, "EncodeIQ": true,
	"EncodeIQElement": true, "EncodeMessage": true, "EncodeMessageElement": true, "EncodePresence": true,
	"EncodePresenceElement": true, "UnmarshalIQ": true, "UnmarshalIQElement": true, "TokenReader": true,
	"TokenWriter": true, "Serve": true,
}

// networkFuncs are the exported package-level functions of xmpp/* that
// take a context first: the ones that talk to the network.
func networkFuncs(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, f := range parseAll(t, func(pkg string) bool { return under(pkg, "xmpp") }) {
		names := importNames(f.ast)
		for _, d := range f.ast.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv != nil || !fd.Name.IsExported() || len(fd.Type.Params.List) == 0 {
				continue
			}
			sel, ok := fd.Type.Params.List[0].Type.(*ast.SelectorExpr)
			if !ok {
				continue
			}
			if id, ok := sel.X.(*ast.Ident); ok && names[id.Name] == "context" && sel.Sel.Name == "Context" {
				out[module+"/"+f.pkg+"."+fd.Name.Name] = true
			}
		}
	}
	if len(out) < 5 {
		t.Fatalf("only %d network functions found in xmpp/*", len(out))
	}
	return out
}

// TestBridgeMakesNoNetworkCalls: bridge/ is glue; it talks to XMPP only
// through xmppclient (the OMEMO work too: xmppclient.OMEMO holds the session's
// omemoxmpp client and its locks; bridge/ reads its state). It calls no function of mellium's packages but
// jid's, none of the stream methods of a mellium session, and no function
// of xmpp/* that takes a context (dials, queries, uploads).
func TestBridgeMakesNoNetworkCalls(t *testing.T) {
	network := networkFuncs(t)
	files := parseAll(t, func(pkg string) bool { return pkg == "bridge" })
	if len(files) < 20 {
		t.Fatalf("only %d files of bridge/ checked", len(files))
	}
	for _, f := range files {
		pkgCalls(f.ast, func(path, name string) {
			switch {
			case strings.HasPrefix(path, "mellium.im/") && path != "mellium.im/xmpp/jid":
				t.Errorf("%s calls %s.%s: XMPP work belongs in xmppclient", f.path, path, name)
			case network[path+"."+name]:
				t.Errorf("%s calls %s.%s, which talks to the network: call it from xmppclient", f.path, path, name)
			}
		})
		imports := importNames(f.ast)
		ast.Inspect(f.ast, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !sessionIO[sel.Sel.Name] {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && imports[id.Name] != "" {
				return true // a package's function (xmppclient.SendMessage), not a method
			}
			t.Errorf("%s calls .%s: reading and writing the XMPP stream belongs in xmppclient", f.path, sel.Sel.Name)
			return true
		})
	}
}

// TestBridgeParsesNoStanza: what arrives is read by xmppclient (Classify,
// ParseMessage, ReadGroupchat, the PEP notifications); bridge/ calls none
// of the parsers of xmpp/* or omemoxmpp itself. xmpp/conn's parse what the user types
// (a JID, a server address), not stanzas.
func TestBridgeParsesNoStanza(t *testing.T) {
	files := parseAll(t, func(pkg string) bool { return pkg == "bridge" })
	if len(files) < 20 {
		t.Fatalf("only %d files of bridge/ checked", len(files))
	}
	for _, f := range files {
		pkgCalls(f.ast, func(path, name string) {
			rel, ok := strings.CutPrefix(path, module+"/")
			if !ok || !(under(rel, "xmpp") || rel == "omemoxmpp") || rel == "xmpp/conn" {
				return
			}
			parser := strings.HasSuffix(name, "FromEvent")
			for _, verb := range []string{"Parse", "Decode", "Unmarshal", "Unwrap", "Read", "Find"} {
				parser = parser || strings.HasPrefix(name, verb)
			}
			if parser {
				t.Errorf("%s calls %s.%s: stanzas are read in xmppclient", f.path, rel, name)
			}
		})
	}
}

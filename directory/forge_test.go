package directory

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// forge signs and writes an entry for op with payload even where its
// effect is refused (apply fails): what a holder of the directory key
// writing the database by hand could do. It lives in a test file only
// (review r4 finding 4): no build of ccdir can sign a refused entry.
func (t *Tx) forge(op string, payload any) error {
	e, err := t.newEntry(op, payload)
	if err != nil {
		return err
	}
	_ = apply(t.ctx, t.tx, e) // refused or not, it is signed
	return t.seal(e)
}

// TestNoTestHooks (review r4 finding 4): the package's production code
// declares no test hook (a testOnly… variable a test sets): what only
// tests may do lives in test files.
func TestNoTestHooks(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.VAR {
				continue
			}
			for _, s := range g.Specs {
				for _, n := range s.(*ast.ValueSpec).Names {
					if strings.HasPrefix(strings.ToLower(n.Name), "testonly") {
						t.Errorf("%s: production code declares the test hook %s", fset.Position(n.Pos()), n.Name)
					}
				}
			}
		}
	}
}

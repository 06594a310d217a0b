package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestLayering checks the layering of DESIGN.md mechanically: directory
// and keys import nothing of the project, nothing imports cmd, and only
// cmd imports cobra and viper. pkg/export renders and parses: it imports
// no database/sql, and neither the outbox nor the digest job, not even
// through another package.
func TestLayering(t *testing.T) {
	const module = "github.com/ccdir/ccdir"
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	type pkg struct {
		ImportPath string
		Imports    []string
		Deps       []string
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	var pkgs []pkg
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 4 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	leaf := map[string]bool{module + "/directory": true, module + "/keys": true}
	seenLeaf := 0
	for _, p := range pkgs {
		isCmd := strings.HasPrefix(p.ImportPath, module+"/cmd/")
		internalOf := func(imp string) bool {
			// A package may use its own internal packages.
			return strings.HasPrefix(imp, p.ImportPath+"/internal/")
		}
		if leaf[p.ImportPath] {
			seenLeaf++
		}
		for _, imp := range p.Imports {
			switch {
			case leaf[p.ImportPath] && strings.HasPrefix(imp, module) && !internalOf(imp):
				t.Errorf("%s imports %s: directory and keys must import nothing of the project", p.ImportPath, imp)
			case strings.HasPrefix(imp, module+"/cmd/"):
				t.Errorf("%s imports %s: nothing imports cmd", p.ImportPath, imp)
			case !isCmd && (strings.HasPrefix(imp, "github.com/spf13/cobra") || strings.HasPrefix(imp, "github.com/spf13/viper")):
				t.Errorf("%s imports %s: only cmd/ccdir uses cobra and viper", p.ImportPath, imp)
			}
		}
	}
	export := false
	for _, p := range pkgs {
		if p.ImportPath != module+"/pkg/export" {
			continue
		}
		export = true
		for _, imp := range p.Imports {
			if imp == "database/sql" {
				t.Errorf("%s imports database/sql: export renders and parses, it keeps no tables", p.ImportPath)
			}
		}
		for _, dep := range p.Deps {
			if dep == module+"/pkg/outbox" || dep == module+"/pkg/digest" {
				t.Errorf("%s depends on %s: export queues and sends nothing", p.ImportPath, dep)
			}
		}
	}
	if !export {
		t.Error("pkg/export not found by go list")
	}
	if seenLeaf != 2 {
		t.Fatalf("directory and keys not both found by go list")
	}
}

// ddl matches SQL that changes a schema.
var ddl = regexp.MustCompile(`(?i)\b(CREATE|ALTER|DROP)\s+(TABLE|INDEX|TRIGGER|VIEW)\b`)

// TestOnlyDirectoryMigrates checks the schema ownership of DESIGN.md:
// outside package directory, SQL that changes a schema is written only in
// a package's migrations.go, and what that file declares reaches the
// rest of the package only through its Migrations (and Owner): so only
// the directory's runner, which applies the Migrations, runs it. No
// InitSchema functions remain.
func TestOnlyDirectoryMigrates(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	type file struct {
		path string
		f    *ast.File
	}
	byDir := map[string][]file{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		byDir[filepath.Dir(path)] = append(byDir[filepath.Dir(path)], file{path, f})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	owners := 0
	for dir, files := range byDir {
		rel, _ := filepath.Rel(root, dir)
		if rel == "directory" {
			continue
		}
		// What migrations.go declares, besides Migrations and Owner.
		private := map[string]bool{}
		for _, f := range files {
			if filepath.Base(f.path) != "migrations.go" {
				continue
			}
			owners++
			for _, d := range f.f.Decls {
				switch d := d.(type) {
				case *ast.FuncDecl:
					private[d.Name.Name] = true
				case *ast.GenDecl:
					for _, s := range d.Specs {
						if vs, ok := s.(*ast.ValueSpec); ok {
							for _, n := range vs.Names {
								private[n.Name] = n.Name != "Migrations" && n.Name != "Owner"
							}
						}
					}
				}
			}
		}
		for _, f := range files {
			inMigrations := filepath.Base(f.path) == "migrations.go"
			ast.Inspect(f.f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.FuncDecl:
					if n.Name.Name == "InitSchema" {
						t.Errorf("%s: func InitSchema: tables are made by migrations, which only directory.Open runs", f.path)
					}
				case *ast.BasicLit:
					if n.Kind == token.STRING && ddl.MatchString(n.Value) && !inMigrations {
						t.Errorf("%s: %s: schema SQL outside migrations.go (only the directory's runner changes the schema)", fset.Position(n.Pos()), ddl.FindString(n.Value))
					}
				case *ast.Ident:
					if !inMigrations && private[n.Name] && n.Obj == nil {
						t.Errorf("%s: %s is declared in migrations.go: only the runner applies it, through Migrations", fset.Position(n.Pos()), n.Name)
					}
				}
				return true
			})
		}
	}
	if owners < 4 {
		t.Fatalf("found %d migrations.go files, want those of outbox, inbound, digest and relay", owners)
	}
}

var (
	createTable = regexp.MustCompile(`(?i)\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)`)
	tableUse    = regexp.MustCompile(`(?i)\b(?:FROM|INTO|UPDATE|JOIN)\s+(\w+)`)
)

// TestTablesOwned checks that no package reads or writes another's
// tables (DESIGN.md, Data): the SQL in a package's non-test code names
// only the tables its own migrations (directory: its schema) create; it
// asks the owner for the rest.
func TestTablesOwned(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	owner := map[string]string{} // table → package folder
	literals := map[string][]*ast.BasicLit{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		dir, _ := filepath.Rel(root, filepath.Dir(path))
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			literals[dir] = append(literals[dir], lit)
			if filepath.Base(path) == "migrations.go" || dir == "directory" {
				for _, m := range createTable.FindAllStringSubmatch(lit.Value, -1) {
					owner[strings.ToLower(m[1])] = dir
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"ledger", "contacts", "outbox", "outbox_blob", "seen_signatures", "digests", "alerts", "schema_migrations"} {
		if owner[table] == "" {
			t.Fatalf("no owner found for table %s", table)
		}
	}
	for dir, lits := range literals {
		for _, lit := range lits {
			for _, m := range tableUse.FindAllStringSubmatch(lit.Value, -1) {
				table := strings.ToLower(m[1])
				if o, ok := owner[table]; ok && o != dir {
					t.Errorf("%s: %s uses table %s of %s: ask its owner", fset.Position(lit.Pos()), dir, table, o)
				}
			}
		}
	}
}

// sqlText matches SQL in a string: a query, a change, a schema or a
// pragma, its keywords in capitals as all SQL of ccdir is written (help
// text says "select … from" and "delete … from" in prose).
var sqlText = regexp.MustCompile(`(?s)\bSELECT\b.+\bFROM\b|\bINSERT\s+(OR\s+\w+\s+)?INTO\b|\bREPLACE\s+INTO\b|\bUPDATE\s+\w+\s+SET\b|\bDELETE\s+FROM\b|\b(CREATE|ALTER|DROP)\s+(TEMP\s+|TEMPORARY\s+|UNIQUE\s+)?(TABLE|INDEX|TRIGGER|VIEW)\b|\bPRAGMA\b`)

// queryMethods are the methods of database/sql that run SQL.
var queryMethods = map[string]bool{
	"Query": true, "QueryContext": true, "QueryRow": true, "QueryRowContext": true,
	"Exec": true, "ExecContext": true, "Prepare": true, "PrepareContext": true,
	"Begin": true, "BeginTx": true,
}

// sqlProblems lists what in f is SQL: a string holding SQL, an import of
// database/sql or of an SQLite driver, a call of a method that runs SQL
// (on any value: cmd holds no database handle of its own to call it on).
func sqlProblems(fset *token.FileSet, f *ast.File) (literals int, problems []string) {
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		if path == "database/sql" || strings.Contains(path, "sqlite") {
			problems = append(problems, fmt.Sprintf("%s: imports %s", fset.Position(imp.Pos()), path))
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BasicLit:
			if n.Kind != token.STRING {
				return true
			}
			literals++
			text, err := strconv.Unquote(n.Value)
			if err != nil {
				text = n.Value
			}
			if m := sqlText.FindString(text); m != "" {
				problems = append(problems, fmt.Sprintf("%s: SQL in a string: %.40q", fset.Position(n.Pos()), m))
			}
		case *ast.CallExpr:
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok && queryMethods[sel.Sel.Name] {
				problems = append(problems, fmt.Sprintf("%s: calls %s, which runs SQL", fset.Position(n.Pos()), sel.Sel.Name))
			}
		}
		return true
	})
	return literals, problems
}

// TestCmdNoSQL checks that cmd/ccdir holds no SQL: no string of its
// non-test code is SQL, it imports neither database/sql nor a driver, and
// it runs no query on a database handle; it asks the package that owns
// the table.
func TestCmdNoSQL(t *testing.T) {
	fset, files := parseSources(t, ".")
	total := 0
	for _, f := range files {
		n, problems := sqlProblems(fset, f)
		total += n
		for _, p := range problems {
			t.Errorf("%s: cmd runs no SQL: ask the package that owns the table", p)
		}
	}
	if total < 200 {
		t.Fatalf("found only %d string literals in cmd/ccdir", total)
	}
}

// TestSQLRule shows that the rule of TestCmdNoSQL finds SQL in a string,
// the import of database/sql and a query run on a handle, and takes help
// text for what it is.
func TestSQLRule(t *testing.T) {
	const src = `package main

import (
	"database/sql"
	"fmt"
)

const help = "Select the contacts you want from the list, or delete from it what was updated; set --all."

func count(ctx context.Context, db *sql.DB) (n int, err error) {
	err = db.QueryRowContext(ctx, ` + "`" + `SELECT count(*)
		FROM outbox WHERE status = 'failed'` + "`" + `).Scan(&n)
	_, err = s.DB().ExecContext(ctx, "DELETE FROM seen_signatures")
	_, _ = db.Exec("PRAGMA journal_mode=WAL")
	fmt.Println(help, "INSERT OR IGNORE INTO alerts(id) VALUES (1)", "UPDATE outbox SET status = 'x'", "CREATE TABLE t (x)")
	return n, err
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "sql.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, problems := sqlProblems(fset, f)
	want := []string{
		"sql.go:4:2: imports database/sql",
		"sql.go:11:8: calls QueryRowContext",
		"sql.go:11:32: SQL in a string",
		"sql.go:13:11: calls ExecContext",
		"sql.go:13:35: SQL in a string",
		"sql.go:14:9: calls Exec",
		"sql.go:14:17: SQL in a string",
		"sql.go:15:20: SQL in a string",
		"sql.go:15:67: SQL in a string",
		"sql.go:15:101: SQL in a string",
	}
	if len(problems) != len(want) {
		t.Fatalf("problems:\n%s\nwant %d", strings.Join(problems, "\n"), len(want))
	}
	for i, p := range problems {
		if !strings.HasPrefix(p, want[i]) {
			t.Errorf("problem %d: %s\nwant it to start with %s", i, p, want[i])
		}
	}
}

package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// handlerFields are the fields of cobra.Command that hold a handler.
var handlerFields = map[string]bool{
	"Run": true, "RunE": true,
	"PreRun": true, "PreRunE": true, "PostRun": true, "PostRunE": true,
	"PersistentPreRun": true, "PersistentPreRunE": true,
	"PersistentPostRun": true, "PersistentPostRunE": true,
}

// maxHandlerStmts caps the statements of a handler written inline.
const maxHandlerStmts = 6

// flagReaders are the functions of cmd/ccdir that a handler may call to
// collect which flags were given: they only read cobra's flag sets.
var flagReaders = map[string]bool{"countGlobal": true, "flagChanged": true}

// runName is the name of a command's run function.
var runName = regexp.MustCompile(`^run[A-Z]`)

// parseSources parses the non-test Go files of dir.
func parseSources(t *testing.T, dir string) (*token.FileSet, map[string]*ast.File) {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	files := map[string]*ast.File{}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(name)] = f
	}
	if len(files) < 10 {
		t.Fatalf("found only %d source files in %s", len(files), dir)
	}
	return fset, files
}

// checkHandlers returns how many handlers f sets on a cobra.Command
// and what is wrong with those written inline. A handler is a function
// (runGroupHelp, g.preRun) or a function literal that only collects
// (cmd.Context(), cmd.Flags(), fs.Changed("x"), args[0]) into variables
// and ends by returning one call of a runX function with those.
func checkHandlers(fset *token.FileSet, f *ast.File) (handlers int, problems []string) {
	check := func(field string, v ast.Expr) {
		handlers++
		lit, ok := v.(*ast.FuncLit)
		if !ok {
			return
		}
		if p := inlineProblem(lit.Body); p != "" {
			problems = append(problems, fmt.Sprintf("%s: %s %s", fset.Position(lit.Pos()), field, p))
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CompositeLit:
			if !isCobraCommand(n.Type) {
				return true
			}
			for _, e := range n.Elts {
				if kv, ok := e.(*ast.KeyValueExpr); ok {
					if k, ok := kv.Key.(*ast.Ident); ok && handlerFields[k.Name] {
						check(k.Name, kv.Value)
					}
				}
			}
		case *ast.AssignStmt:
			for i, lhs := range n.Lhs {
				if sel, ok := lhs.(*ast.SelectorExpr); ok && handlerFields[sel.Sel.Name] && i < len(n.Rhs) {
					check(sel.Sel.Name, n.Rhs[i])
				}
			}
		}
		return true
	})
	return handlers, problems
}

func isCobraCommand(e ast.Expr) bool {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	x, ok := sel.X.(*ast.Ident)
	return ok && x.Name == "cobra" && sel.Sel.Name == "Command"
}

// inlineProblem says what in the body of an inline handler is more than
// collecting flags and arguments and calling runX, or "".
func inlineProblem(body *ast.BlockStmt) string {
	n := len(body.List)
	switch {
	case n == 0:
		return "does nothing: call runX"
	case n > maxHandlerStmts:
		return fmt.Sprintf("has %d statements (at most %d): move the work into a runX(ctx, opts, g, args...)", n, maxHandlerStmts)
	}
	for _, s := range body.List[:n-1] {
		as, ok := s.(*ast.AssignStmt)
		if !ok {
			return fmt.Sprintf("has a %T: only assignments that collect flags and arguments may precede the runX call", s)
		}
		for _, e := range as.Rhs {
			if !collects(e) {
				return "assigns more than flags and arguments (cmd.Flags(), fs.Changed, cmd.Context(), args[i])"
			}
		}
	}
	var call ast.Expr
	switch s := body.List[n-1].(type) {
	case *ast.ReturnStmt:
		if len(s.Results) == 1 {
			call = s.Results[0]
		}
	case *ast.ExprStmt:
		call = s.X
	}
	c, ok := call.(*ast.CallExpr)
	if !ok {
		return "does not end by calling runX"
	}
	if id, ok := c.Fun.(*ast.Ident); !ok || !runName.MatchString(id.Name) {
		return "does not end by calling a function runX (ctx, opts, g, args...)"
	}
	for _, a := range c.Args {
		if !collects(a) {
			return "computes an argument of runX: pass flags and arguments as they are"
		}
	}
	return ""
}

// collects says whether e only names or collects what the command line
// gave: a variable, a constant, args[i], args[i:], cmd.Context(),
// cmd.Flags(), fs.Changed("x"), fs.Lookup("x"), fs.NFlag(), a
// flagReaders function, and these joined by ||, &&, ==, != or !.
func collects(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.Ident, *ast.BasicLit:
		return true
	case *ast.SelectorExpr:
		return collects(e.X)
	case *ast.IndexExpr:
		return collects(e.X) && collects(e.Index)
	case *ast.SliceExpr:
		return collects(e.X) && (e.Low == nil || collects(e.Low)) && (e.High == nil || collects(e.High))
	case *ast.UnaryExpr:
		return e.Op == token.NOT && collects(e.X)
	case *ast.BinaryExpr:
		switch e.Op {
		case token.LOR, token.LAND, token.EQL, token.NEQ:
			return collects(e.X) && collects(e.Y)
		}
		return false
	case *ast.CallExpr:
		for _, a := range e.Args {
			if !collects(a) {
				return false
			}
		}
		switch fun := e.Fun.(type) {
		case *ast.Ident:
			return flagReaders[fun.Name]
		case *ast.SelectorExpr:
			switch fun.Sel.Name {
			case "Context", "Flags", "Changed", "Lookup", "NFlag", "ArgsLenAtDash":
				return collects(fun.X)
			}
		}
		return false
	}
	return false
}

// TestCommandsAsRestic keeps every command of cmd/ccdir as restic writes
// them: a constructor newXCmd(g), an xOptions struct its flags are bound
// to, and a handler that only collects what cobra knows (arguments, which
// flags were given) and calls runX(ctx, opts, g, args...), which does the
// work and writes only through g: outside main.go nothing uses the
// process's own streams.
func TestCommandsAsRestic(t *testing.T) {
	fset, files := parseSources(t, ".")
	total := 0
	for _, f := range files {
		n, problems := checkHandlers(fset, f)
		total += n
		for _, p := range problems {
			t.Error(p)
		}
	}
	// 29 commands, root's pre-run hook and the groups' help.
	if total < 30 {
		t.Fatalf("found only %d handlers of cobra commands", total)
	}
	for name, f := range files {
		if name == "main.go" {
			continue // main hands the process's streams to run
		}
		for _, p := range streamProblems(fset, f) {
			t.Error(p)
		}
	}
}

// streamProblems lists the uses in f of the process's own streams (os.Stdin,
// os.Stdout, os.Stderr, fmt.Print*, the log package's printing functions,
// print and println): commands read and write only through globals.
func streamProblems(fset *token.FileSet, f *ast.File) []string {
	var problems []string
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			x, ok := n.X.(*ast.Ident)
			if !ok {
				return true
			}
			name := n.Sel.Name
			if x.Name == "os" && (name == "Stdin" || name == "Stdout" || name == "Stderr") ||
				x.Name == "fmt" && strings.HasPrefix(name, "Print") ||
				x.Name == "log" && (strings.HasPrefix(name, "Print") || strings.HasPrefix(name, "Fatal") || strings.HasPrefix(name, "Panic")) {
				problems = append(problems, fmt.Sprintf("%s: %s.%s: write through g.stdout and g.stderr (read g.stdin)", fset.Position(n.Pos()), x.Name, name))
			}
		case *ast.CallExpr:
			if id, ok := n.Fun.(*ast.Ident); ok && (id.Name == "print" || id.Name == "println") {
				problems = append(problems, fmt.Sprintf("%s: %s: write through g.stdout and g.stderr", fset.Position(n.Pos()), id.Name))
			}
		}
		return true
	})
	return problems
}

// TestHandlerRule shows that the rule of TestCommandsAsRestic tells an
// inline handler (as 23 of 29 were) from one that calls runX.
func TestHandlerRule(t *testing.T) {
	const src = `package main

func newGoodCmd(g *globals) *cobra.Command {
	var o goodOptions
	return &cobra.Command{
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := cmd.Flags()
			o.fromSet, o.toSet = fs.Changed("from"), fs.Changed("to")
			return runGood(cmd.Context(), o, g, args[0])
		},
	}
}

func newNamedCmd(g *globals) *cobra.Command {
	c := &cobra.Command{PersistentPreRunE: g.preRun}
	c.RunE = runGroupHelp
	return c
}

func newEnvCmd(g *globals) *cobra.Command {
	var from string
	return &cobra.Command{
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("from") {
				from = os.Getenv("SENDER")
			}
			return runEnv(cmd.Context(), g, from)
		},
	}
}

func newWorkCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		RunE: func(cmd *cobra.Command, args []string) error {
			snap, err := g.snapshot(cmd.Context())
			return runWork(snap, err)
		},
	}
}

func newLongCmd(g *globals) *cobra.Command {
	c := &cobra.Command{}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		a := args[0]
		b := args[1]
		c := args[2]
		d := args[3]
		e := args[4]
		f := args[5]
		return runLong(a, b, c, d, e, f)
	}
	return c
}

func newHelpCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		RunE: func(c *cobra.Command, args []string) error { return c.Help() },
	}
}

func newArgCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Run: func(cmd *cobra.Command, args []string) { runArg(cmd.Context(), g, strings.ToLower(args[0])) },
	}
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "rule.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	n, problems := checkHandlers(fset, f)
	if n != 8 {
		t.Errorf("found %d handlers, want 8", n)
	}
	want := []string{
		"rule.go:23:9: RunE has a *ast.IfStmt",
		"rule.go:34:9: RunE assigns more than flags and arguments",
		"rule.go:43:11: RunE has 7 statements",
		"rule.go:57:9: RunE does not end by calling a function runX",
		"rule.go:63:8: Run computes an argument of runX",
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

// TestStreamRule shows that streamProblems finds each way around g's
// streams, and leaves writers given to it alone.
func TestStreamRule(t *testing.T) {
	const src = `package main

func runX(ctx context.Context, g *globals) error {
	fmt.Fprintf(g.stdout, "ok\n")
	rc.Log.Printf("fine")
	l := log.New(g.stderr, "ccdir: ", 0)
	fmt.Println("no")
	fmt.Fprintln(os.Stderr, "no")
	log.Printf("no")
	io.Copy(g.stdout, os.Stdin)
	println("no")
	return nil
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "streams.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"streams.go:7:2: fmt.Println",
		"streams.go:8:15: os.Stderr",
		"streams.go:9:2: log.Printf",
		"streams.go:10:20: os.Stdin",
		"streams.go:11:2: println",
	}
	problems := streamProblems(fset, f)
	if len(problems) != len(want) {
		t.Fatalf("problems:\n%s\nwant %d", strings.Join(problems, "\n"), len(want))
	}
	for i, p := range problems {
		if !strings.HasPrefix(p, want[i]) {
			t.Errorf("problem %d: %s\nwant it to start with %s", i, p, want[i])
		}
	}
}

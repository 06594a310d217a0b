package main

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/pkg/digest"
)

// TestConfigTable checks every row: a unique lower-case section.name key,
// a help text, and a default its own check accepts.
func TestConfigTable(t *testing.T) {
	seen := map[string]bool{}
	for i := range configKeys {
		k := &configKeys[i]
		if seen[k.name] {
			t.Errorf("%s: listed twice", k.name)
		}
		seen[k.name] = true
		if section, name, ok := strings.Cut(k.name, "."); !ok || section == "" || name == "" || k.name != strings.ToLower(k.name) || strings.Count(k.name, ".") != 1 {
			t.Errorf("%s: want a lower-case key section.name", k.name)
		}
		if k.help == "" || k.typ.name == "" || k.typ.parse == nil {
			t.Errorf("%s: no help, type name or check", k.name)
		}
		if _, err := k.typ.parse(k.def); err != nil {
			t.Errorf("%s: the default %q is refused by its own check: %v", k.name, k.def, err)
		}
	}
}

// TestConfigTypes runs each kind of check on good and bad values.
func TestConfigTypes(t *testing.T) {
	for _, c := range []struct {
		typ  configType
		in   string
		want any // nil: refused
	}{
		{intType(1, 64), "8", 8},
		{intType(1, 64), "0", nil},
		{intType(1, 64), "65", nil},
		{intType(1, 64), "2.7", nil},
		{boolType, "true", true},
		{boolType, "0", false},
		{boolType, "yes", nil},
		{durationType, "72h", 72 * time.Hour},
		{durationType, "0s", nil},
		{durationType, "-1m", nil},
		{durationType, "72", nil},
		{textType, "Encrypted message", "Encrypted message"},
		{textType, "two\nlines", nil},
		{urlType, "smtp://user@mail.example:587", "smtp://user@mail.example:587"},
		{urlType, "", ""},
		{urlType, "smtp://user:secret@mail.example", nil},
		{urlType, "mail.example", nil},
		{intervalType, "weekly", digest.Interval{Days: 7}},
		{intervalType, "14", digest.Interval{Days: 14}},
		{intervalType, "fortnightly", nil},
		{attachType, "vcard, keys", []string{"vcard", "keys"}},
		{attachType, "none", []string{}},
		{attachType, "", []string(nil)},
		{attachType, "vcard,pdf", nil},
		{tlpType, "amber+strict", "AMBER+STRICT"},
		{tlpType, "PURPLE", nil},
		{algoType, "RSA4096", "rsa4096"},
		{algoType, "dsa", nil},
		{listenType(false), "127.0.0.1:2525", "127.0.0.1:2525"},
		{listenType(false), "unix:/run/ccdir.sock", nil},
		{listenType(true), "unix:/run/ccdir.sock", "unix:/run/ccdir.sock"},
		{listenType(true), "localhost", nil},
		{prefixListType, "192.0.2.1, 2001:db8::1/32,::ffff:192.0.2.7", []string{"192.0.2.1/32", "2001:db8::/32", "192.0.2.7/32"}},
		{prefixListType, "", []string(nil)},
		{prefixListType, "mta.example", nil},
		// An IPv4-mapped network is the IPv4 network (the server unmaps
		// the addresses it compares), or it would never match.
		{prefixListType, "::ffff:192.0.2.0/120, ::FFFF:198.51.100.7/128", []string{"192.0.2.0/24", "198.51.100.7/32"}},
		{prefixListType, "::ffff:0:0/95", nil},
	} {
		got, err := c.typ.parse(c.in)
		switch {
		case c.want == nil && err == nil:
			t.Errorf("%s: %q accepted as %#v, want refused", c.typ.name, c.in, got)
		case c.want == nil && !strings.HasPrefix(err.Error(), "want ") && !strings.HasPrefix(err.Error(), "not a "):
			t.Errorf("%s: %q: error %q does not say what is wanted", c.typ.name, c.in, err)
		case c.want != nil && err != nil:
			t.Errorf("%s: %q refused: %v", c.typ.name, c.in, err)
		case c.want != nil && !reflect.DeepEqual(got, c.want):
			t.Errorf("%s: %q is %#v, want %#v", c.typ.name, c.in, got, c.want)
		}
	}
}

func TestDurationText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		72 * time.Hour: "72h", 10 * time.Minute: "10m", 90 * time.Minute: "1h30m",
		30 * time.Second: "30s", time.Hour + time.Second: "1h0m1s",
	} {
		if got := durationText(d); got != want {
			t.Errorf("durationText(%v) = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(durationText(d)); err != nil || back != d {
			t.Errorf("durationText(%v) = %q does not parse back (%v, %v)", d, durationText(d), back, err)
		}
	}
}

func TestScalarText(t *testing.T) {
	for _, c := range []struct {
		in   any
		list bool
		want string
		ok   bool
	}{
		{nil, false, "", true},
		{3, false, "3", true},
		{2.5, false, "2.5", true},
		{true, false, "true", true},
		{[]any{"json", "keys"}, true, "json,keys", true},
		{[]any{"json", "keys"}, false, "", false},
		{[]any{[]any{"x"}}, true, "", false},
		{map[string]any{"a": 1}, false, "", false},
	} {
		got, err := scalarText(c.in, c.list)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("scalarText(%#v, %v) = %q, %v; want %q, ok %v", c.in, c.list, got, err, c.want, c.ok)
		}
	}
}

// TestConfigReference fails when docs/configuration.md is not what the
// table makes: run go generate ./cmd/ccdir.
func TestConfigReference(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "configuration.md")
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go generate ./cmd/ccdir)", err)
	}
	if want := configReference(); !bytes.Equal(got, want) {
		t.Errorf("%s is not what configKeys makes: run go generate ./cmd/ccdir", path)
	}
	for i := range configKeys {
		if !bytes.Contains(got, []byte("\n### "+configKeys[i].name+"\n")) {
			t.Errorf("%s does not describe %s", path, configKeys[i].name)
		}
	}
}

// TestConfigAccessors reads the sources of cmd/ccdir: every configuration
// value is read through the accessors of config.go (never from viper
// directly), with a key from the table and the accessor of its type.
func TestConfigAccessors(t *testing.T) {
	accessor := map[string]reflect.Type{
		"text": reflect.TypeOf(""), "number": reflect.TypeOf(0), "boolean": reflect.TypeOf(false),
		"duration": reflect.TypeOf(time.Duration(0)), "list": reflect.TypeOf([]string(nil)),
		"numbers": reflect.TypeOf([]int(nil)),
	}
	generic := map[string]reflect.Type{"digest.Interval": reflect.TypeOf(digest.Interval{})}
	keyType := map[string]reflect.Type{}
	for i := range configKeys {
		v, err := configKeys[i].typ.parse(configKeys[i].def)
		if err != nil {
			t.Fatal(err)
		}
		keyType[configKeys[i].name] = reflect.TypeOf(v)
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	reads := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		check := func(call *ast.CallExpr, want reflect.Type, what string) {
			pos := fset.Position(call.Pos())
			if len(call.Args) != 1 {
				t.Errorf("%s: %s takes one key", pos, what)
				return
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return // configGet's own wrappers pass their key on
			}
			key, _ := strconv.Unquote(lit.Value)
			reads++
			switch typ, ok := keyType[key]; {
			case !ok:
				t.Errorf("%s: %s(%q): no such key in configKeys", pos, what, key)
			case typ != want:
				t.Errorf("%s: %s(%q): the key holds %v, the accessor gives %v", pos, what, key, typ, want)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				// g.v.Get..., g.v.Set...: viper read or written outside config.go.
				if inner, ok := n.X.(*ast.SelectorExpr); ok && inner.Sel.Name == "v" && name != "config.go" {
					if m := n.Sel.Name; strings.HasPrefix(m, "Get") || m == "Set" || m == "IsSet" || m == "AllSettings" {
						t.Errorf("%s: %s reads viper directly; use the accessors of config.go", fset.Position(n.Pos()), m)
					}
				}
			case *ast.CallExpr:
				switch fn := n.Fun.(type) {
				case *ast.SelectorExpr:
					if typ, ok := accessor[fn.Sel.Name]; ok {
						if id, ok := fn.X.(*ast.Ident); ok && id.Name == "g" {
							check(n, typ, "g."+fn.Sel.Name)
						}
					}
				case *ast.IndexExpr:
					if id, ok := fn.X.(*ast.Ident); ok && id.Name == "configGet" {
						if len(n.Args) != 2 {
							t.Errorf("%s: configGet takes g and a key", fset.Position(n.Pos()))
							return true
						}
						if _, ok := n.Args[1].(*ast.BasicLit); !ok {
							return true // the wrappers g.text and so on pass their key on
						}
						var typ reflect.Type
						if sel, ok := fn.Index.(*ast.SelectorExpr); ok {
							if pkg, ok := sel.X.(*ast.Ident); ok {
								typ = generic[pkg.Name+"."+sel.Sel.Name]
							}
						}
						if typ == nil {
							t.Errorf("%s: configGet of an unknown type; add it to this test", fset.Position(n.Pos()))
							return true
						}
						check(&ast.CallExpr{Fun: n.Fun, Args: n.Args[1:], Lparen: n.Lparen}, typ, "configGet")
					}
				}
			}
			return true
		})
	}
	if reads < 20 {
		t.Errorf("found only %d configuration reads; the test no longer sees them", reads)
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
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

package main

import (
	"os"
	"regexp"
	"runtime"
	"testing"
)

// TestVersionGoCrypto: ccdir version names the go-crypto that go.mod
// requires, and the Go that built it.
func TestVersionGoCrypto(t *testing.T) {
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(goCryptoModule) + ` (v\S+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatalf("go.mod requires no %s", goCryptoModule)
	}
	v := readVersion()
	if v.GoCrypto != string(m[1]) {
		t.Errorf("version says go-crypto %s, go.mod requires %s", v.GoCrypto, m[1])
	}
	if v.Go != runtime.Version() {
		t.Errorf("version says Go %s, built with %s", v.Go, runtime.Version())
	}
}

// TestVersionText: what ccdir version prints for a binary built in a git
// checkout with changes not committed.
func TestVersionText(t *testing.T) {
	v := versionInfo{Version: "v0.0.0-20261205005210-3fddf5f0aaaa+dirty", Commit: "3fddf5f0aaaa", Modified: true,
		Date: "2026-12-05T00:52:10Z", Go: "go1.24.4", Platform: "linux/amd64", GoCrypto: "v1.5.2"}
	want := "ccdir v0.0.0-20261205005210-3fddf5f0aaaa+dirty\n" +
		"commit     3fddf5f0aaaa (modified: built from a tree with uncommitted changes)\n" +
		"date       2026-12-05T00:52:10Z\n" +
		"go         go1.24.4 linux/amd64\n" +
		"go-crypto  v1.5.2\n"
	if got := v.text(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

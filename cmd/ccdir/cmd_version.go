package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// goCryptoModule is the OpenPGP library whose version ccdir version names:
// what signs, encrypts and verifies everything ccdir sends and accepts.
const goCryptoModule = "github.com/ProtonMail/go-crypto"

// versionInfo is what ccdir version prints, read from the build info the Go
// linker embeds in every binary (runtime/debug.ReadBuildInfo): no ldflags.
// A go build in a git checkout records the commit, its time and whether the
// tree had changes (vcs.*), and, since Go 1.24, a version from the
// checkout's tag (or a pseudo-version); elsewhere those are "(devel)" and
// "unknown".
type versionInfo struct {
	Version  string `json:"version"`
	Commit   string `json:"commit"`
	Modified bool   `json:"modified"`
	Date     string `json:"date"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
	GoCrypto string `json:"go_crypto"`
}

// readVersion is the build's versionInfo.
func readVersion() versionInfo {
	v := versionInfo{Version: "(devel)", Commit: "unknown", Date: "unknown", GoCrypto: "unknown",
		Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		v.Go = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.time":
			v.Date = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	for _, d := range bi.Deps {
		if d.Path == goCryptoModule {
			if d.Replace != nil {
				d = d.Replace
			}
			v.GoCrypto = d.Version
		}
	}
	return v
}

// text is the version as ccdir version and ccdir --version print it.
func (v versionInfo) text() string {
	commit := v.Commit
	if v.Modified {
		commit += " (modified: built from a tree with uncommitted changes)"
	}
	return fmt.Sprintf("ccdir %s\ncommit     %s\ndate       %s\ngo         %s %s\ngo-crypto  %s\n",
		v.Version, commit, v.Date, v.Go, v.Platform, v.GoCrypto)
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version [--json]",
		Short: "Print the version, commit, build date, Go and go-crypto versions of this binary",
		Long: `Print the version of this ccdir binary, the commit it was built from and
that commit's date (from the build info a go build in a git checkout
records; "(devel)" and "unknown" when it was built elsewhere), the Go
version and platform it was built with, and the version of go-crypto, the
OpenPGP library that signs, encrypts and verifies. ccdir --version prints
the same. version reads no home and no configuration.`,
		Args:              cobra.NoArgs,
		PersistentPreRunE: noSetup,
		RunE:              func(*cobra.Command, []string) error { return runVersion(g) },
	}
}

// noSetup replaces the root's setup (home, configuration) for a command
// that reads neither: a broken config.yaml must not hide which binary is
// running, nor stop the man pages from being written.
func noSetup(*cobra.Command, []string) error { return nil }

func runVersion(g *globals) error {
	v := readVersion()
	if g.json {
		return g.printJSON(v)
	}
	_, err := fmt.Fprint(g.stdout, v.text())
	return err
}

// setVersionFlag gives root a --version flag that prints what ccdir
// version prints.
func setVersionFlag(root *cobra.Command) {
	root.Version = readVersion().text()
	root.SetVersionTemplate("{{.Version}}")
}

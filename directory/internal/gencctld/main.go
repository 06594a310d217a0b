// Command gencctld writes cctld.tsv and iso3166.tsv for package directory
// from Debian's iso-codes and publicsuffix packages. It is run by
// "go generate" in the directory folder:
//
//	//go:generate go run ./internal/gencctld
//
// The source package versions go into the file headers; they are read with
// dpkg-query unless -versions is given. A rerun on the same inputs gives
// identical bytes.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/ccdir/ccdir/directory/internal/cctldgen"
)

func main() {
	isoPath := flag.String("iso", "/usr/share/iso-codes/json/iso_3166-1.json", "iso-codes `file` iso_3166-1.json")
	pslPath := flag.String("psl", "/usr/share/publicsuffix/public_suffix_list.dat", "Public Suffix List `file`")
	versions := flag.String("versions", "", "source package versions for the header (default: from dpkg-query)")
	out := flag.String("o", "cctld.tsv", "ccTLD output `file`")
	isoOut := flag.String("iso-out", "iso3166.tsv", "ISO 3166-1 output `file`")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "gencctld: error: unexpected arguments")
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*isoPath, *pslPath, *versions, *out, *isoOut); err != nil {
		fmt.Fprintf(os.Stderr, "gencctld: error: %v\n", err)
		os.Exit(1)
	}
}

func run(isoPath, pslPath, versions, out, isoOut string) error {
	if versions == "" {
		v, err := dpkgVersions()
		if err != nil {
			return err
		}
		versions = v
	}
	isoJSON, err := os.ReadFile(isoPath)
	if err != nil {
		return err
	}
	psl, err := os.ReadFile(pslPath)
	if err != nil {
		return err
	}
	var cc, iso bytes.Buffer
	if err := cctldgen.Generate(bytes.NewReader(isoJSON), bytes.NewReader(psl), versions, &cc); err != nil {
		return err
	}
	if err := cctldgen.GenerateISO3166(bytes.NewReader(isoJSON), versions, &iso); err != nil {
		return err
	}
	if err := writeFile(out, cc.Bytes()); err != nil {
		return err
	}
	return writeFile(isoOut, iso.Bytes())
}

// dpkgVersions returns "iso-codes V1, publicsuffix V2".
func dpkgVersions() (string, error) {
	b, err := exec.Command("dpkg-query", "-W", "iso-codes", "publicsuffix").Output()
	if err != nil {
		return "", fmt.Errorf("dpkg-query: %w (use -versions)", err)
	}
	var parts []string
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) != 2 {
			return "", fmt.Errorf("dpkg-query: unexpected line %q (use -versions)", line)
		}
		parts = append(parts, f[0]+" "+f[1])
	}
	if len(parts) != 2 {
		return "", fmt.Errorf("dpkg-query: expected 2 packages, got %d (use -versions)", len(parts))
	}
	return strings.Join(parts, ", "), nil
}

// writeFile replaces name atomically: a temporary file in the same folder,
// then rename.
func writeFile(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

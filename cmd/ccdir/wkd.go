package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ccdir/ccdir/keys"
)

// wkdFile is one file of the Web Key Directory tree pubkey --wkd writes.
type wkdFile struct {
	Address string `json:"address"`
	Method  string `json:"method"` // "direct" or "advanced"
	Path    string `json:"path"`
}

// writeWKD writes the Web Key Directory files of addrs (pubkey --wkd):
// for each address the key with that address's user ID only, in the
// direct and the advanced layout, and each layout's policy file if it
// has none. See the pubkey command's help.
func writeWKD(g *globals, dir string, pub *keys.Public, addrs []string, certifiers ...*keys.Public) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if st, err := os.Stat(dir); err != nil {
		return withHint(fmt.Errorf("--wkd %s: %w", dir, err), "give the folder the web server serves (it must exist)")
	} else if !st.IsDir() {
		return fmt.Errorf("--wkd %s is not a folder", dir)
	}
	var domains []string
	for _, a := range addrs {
		_, d, _ := strings.Cut(strings.ToLower(a), "@")
		if !slices.Contains(domains, d) {
			domains = append(domains, d)
		}
	}
	// Everything is made in memory first: a key without a user ID for
	// an address writes nothing.
	type file struct {
		wkdFile
		data []byte
	}
	var files []file
	var policies []string
	for _, a := range addrs {
		local, domain, _ := strings.Cut(a, "@")
		domain = strings.ToLower(domain)
		bin, err := pub.KeyFor(a, certifiers...)
		if err != nil {
			return withHint(err, "give the key its user IDs first: ccdir key update-uids")
		}
		hash := keys.WKDHash(local)
		direct := filepath.Join(dir, ".well-known", "openpgpkey")
		if len(domains) > 1 {
			direct = filepath.Join(dir, domain, ".well-known", "openpgpkey")
		}
		advanced := filepath.Join(dir, "openpgpkey."+domain, ".well-known", "openpgpkey", domain)
		files = append(files,
			file{wkdFile{a, "direct", filepath.Join(direct, "hu", hash)}, bin},
			file{wkdFile{a, "advanced", filepath.Join(advanced, "hu", hash)}, bin})
		for _, p := range []string{filepath.Join(direct, "policy"), filepath.Join(advanced, "policy")} {
			if !slices.Contains(policies, p) {
				policies = append(policies, p)
			}
		}
	}
	var out []wkdFile
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
			return err
		}
		if err := writeFileAtomic(f.Path, f.data, 0o644); err != nil {
			return err
		}
		out = append(out, f.wkdFile)
	}
	for _, p := range policies {
		// An empty policy file says the directory exists; one the web
		// master wrote is kept.
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			if err := writeFileAtomic(p, nil, 0o644); err != nil {
				return err
			}
			out = append(out, wkdFile{Method: "policy", Path: p})
		} else if err != nil {
			return err
		}
	}
	if g.json {
		return g.printJSON(map[string]any{"fingerprint": pub.Fingerprint, "files": out})
	}
	for _, f := range out {
		if f.Method == "policy" {
			g.printf("wrote %s (empty policy)\n", f.Path)
			continue
		}
		g.printf("wrote %s (%s, %s)\n", f.Path, f.Address, f.Method)
	}
	for _, d := range domains {
		root := dir
		if len(domains) > 1 {
			root = filepath.Join(dir, d)
		}
		g.printf("serve %s as https://%s/ (direct method) or %s as https://openpgpkey.%s/ (advanced method)\n",
			root, d, filepath.Join(dir, "openpgpkey."+d), d)
	}
	return nil
}

// printDANE prints the DNS OPENPGPKEY records (RFC 7929) of addrs
// (pubkey --dane): for each address, its owner name and the key with
// that address's user ID only, base64, in zone file form.
func printDANE(g *globals, pub *keys.Public, addrs []string, certifiers ...*keys.Public) error {
	type record struct {
		Address string `json:"address"`
		Name    string `json:"name"`
		Key     string `json:"key"` // base64
	}
	var out []record
	for _, a := range addrs {
		name, err := keys.DANEName(a)
		if err != nil {
			return err
		}
		bin, err := pub.KeyFor(a, certifiers...)
		if err != nil {
			return withHint(err, "give the key its user IDs first: ccdir key update-uids")
		}
		out = append(out, record{a, name, base64.StdEncoding.EncodeToString(bin)})
	}
	if g.json {
		return g.printJSON(map[string]any{"fingerprint": pub.Fingerprint, "records": out})
	}
	for _, r := range out {
		g.printf("; %s, key %s\n%s 3600 IN OPENPGPKEY %s\n", r.Address, pub.Fingerprint, r.Name, r.Key)
	}
	return nil
}

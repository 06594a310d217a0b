package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReleasedHomeErase: on a home made by the released ccdir (ledger
// entries of version 1, a digest and a reply sent to Ana), contact erase
// migrates it, turns Ana's contact.add into a tombstone, drops her mail
// and digest records, and leaves none of her data in the file; verify is
// ok, names the tombstone, and Bruno is as he was.
func TestReleasedHomeErase(t *testing.T) {
	dump, err := os.ReadFile(filepath.Join("testdata", "released", "directory.sql"))
	if err != nil {
		t.Fatal(err)
	}
	home := releasedHome(t, string(dump))
	ccdir := func(args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"--home", home}, args...), nil, &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}
	must := func(args ...string) string {
		t.Helper()
		code, out := ccdir(args...)
		if code != 0 {
			t.Fatalf("ccdir %s: exit %d, %s", strings.Join(args, " "), code, out)
		}
		return out
	}
	must("outbox", "list") // migrates
	bruno := must("contact", "show", "bruno@nic.br")
	out := must("contact", "erase", "ana@dns.pt", "--reason", "GDPR art. 17 request 7")
	if !strings.Contains(out, "erased ana@dns.pt (contact 4) in entry 6: 1 entries redacted") || !strings.Contains(out, "outbox 2") ||
		!strings.Contains(out, "digest recipients 1") {
		t.Fatalf("erase: %s", out)
	}
	out = must("verify")
	if !strings.Contains(out, "ok serial 6 ") || !strings.Contains(out, "entry 4 redacted by entry 6 (erase: GDPR art. 17 request 7)") {
		t.Fatalf("verify: %s", out)
	}
	if got := must("contact", "show", "bruno@nic.br"); got != bruno {
		t.Fatalf("bruno after the erasure:\n%s\nwant\n%s", got, bruno)
	}
	if code, _ := ccdir("contact", "show", "ana@dns.pt"); code == 0 {
		t.Fatal("Ana is still shown")
	}
	if v := queryString(t, filepath.Join(home, dbName), `SELECT version || ' ' || length(payload) || ' ' || hash FROM ledger WHERE seq = 4`); !strings.HasPrefix(v, "1 0 ") {
		t.Fatalf("entry 4: %s", v)
	}
	for _, suffix := range []string{"", "-wal"} {
		data, err := os.ReadFile(filepath.Join(home, dbName) + suffix)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, s := range []string{"ana@dns.pt", "Ana Sousa", "+351212345678", "A429383F7EE5FF2DC5560DB25119BA402E5C652D"} {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("%s%s still holds %q", dbName, suffix, s)
			}
		}
	}
	// A change after it, and a digest: the replay from the tombstone on
	// holds.
	must("contact", "update", "bruno@nic.br", "--lang", "pt")
	must("verify")
}

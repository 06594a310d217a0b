package keys_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
)

// The WKD and DANE names are gpg's (gpg --with-wkd-hash, gpg
// --export-options export-dane), and the key published for an address
// carries that address's user ID only.
func TestWKD(t *testing.T) {
	s, err := keys.GenerateKey(keys.KeySpec{Name: "TLD-OPS directory", Emails: []string{"ccdir@tldops.example", "Alerts@TLDOPS.example"}, Now: uidNow})
	if err != nil {
		t.Fatal(err)
	}
	g := keystest.GPG(t)
	pub, _ := s.Public().Armored()
	g.Import(pub)
	out, _ := g.MustRun("--with-wkd-hash", "--list-keys", s.Fingerprint())
	dane, _ := g.MustRun("--export-options", "export-dane", "--export", s.Fingerprint())
	for _, addr := range []string{"ccdir@tldops.example", "Alerts@TLDOPS.example"} {
		local, domain, _ := strings.Cut(addr, "@")
		want := keys.WKDHash(local) + "@" + strings.ToLower(domain)
		if len(keys.WKDHash(local)) != 32 || !bytes.Contains(bytes.ToLower(out), []byte(want)) {
			t.Errorf("gpg --with-wkd-hash does not list %s:\n%s", want, out)
		}
		name, err := keys.DANEName(addr)
		if err != nil {
			t.Fatal(err)
		}
		label, _, _ := strings.Cut(name, ".")
		if !bytes.Contains(dane, []byte("\n"+label+" TYPE61")) || !strings.HasSuffix(name, "._openpgpkey."+strings.ToLower(domain)+".") {
			t.Errorf("gpg export-dane has no %s:\n%s", name, dane)
		}
		bin, err := s.Public().KeyFor(addr)
		if err != nil {
			t.Fatal(err)
		}
		one, err := keys.ParsePublicOne(bin)
		if err != nil {
			t.Fatal(err)
		}
		if len(one.UserIDs) != 1 || !one.HasEmail(addr) || one.Fingerprint != s.Fingerprint() {
			t.Errorf("key for %s: %q %s", addr, one.UserIDs, one.Fingerprint)
		}
		if err := one.Check(uidNow); err != nil {
			t.Errorf("key for %s: %v", addr, err)
		}
	}
	if _, err := s.Public().KeyFor("room@tldops.example"); err == nil {
		t.Error("KeyFor another address: no error")
	}
	if got := keys.WKDHash("Joe.Doe"); got != "iy9q119eutrkn8s1mk4r39qejnbu3n5q" {
		t.Errorf("WKDHash(Joe.Doe) = %s, want the draft's example", got)
	}
}

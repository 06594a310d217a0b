package keys_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
)

// A successor key carries the old key's user IDs, each certified by the
// old key, which gpg --check-sigs shows as "sig!"; ArmoredWith keeps
// those certifications and drops a third party's.
func TestSuccessorCertifiedByOldKey(t *testing.T) {
	g := keystest.GPG(t)
	// An old directory key with two user IDs, made by gpg.
	oldFpr := g.GenKey("Test Directory <ccdir@example.org>", "future-default", "default", "never")
	g.MustRun("--quick-add-uid", oldFpr, "Test Directory <alerts@example.org>")
	path := filepath.Join(t.TempDir(), "old.sec")
	if err := os.WriteFile(path, g.ExportSecret(oldFpr), 0o600); err != nil {
		t.Fatal(err)
	}
	old, err := keys.ReadSecretFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	next, err := keys.Successor(old, keys.KeySpec{Algo: keys.AlgoEd25519, Lifetime: 365 * 24 * time.Hour, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	pub := next.Public()
	if pub.Expires.IsZero() {
		t.Fatal("successor without the expiry asked for")
	}
	if len(pub.UserIDs) != 2 || !pub.HasEmail("ccdir@example.org") || !pub.HasEmail("alerts@example.org") {
		t.Fatalf("successor user IDs: %v", pub.UserIDs)
	}
	if !pub.CertifiedBy(old.Public()) {
		t.Fatal("successor is not certified by the old key")
	}
	other := keystest.NewSecret(t, "Someone", "someone@example.net")
	if pub.CertifiedBy(other.Public()) {
		t.Fatal("successor certified by a key that never certified it")
	}
	plain, err := pub.Armored()
	if err != nil {
		t.Fatal(err)
	}
	withCert, err := pub.ArmoredWith(old.Public())
	if err != nil {
		t.Fatal(err)
	}
	if len(withCert) <= len(plain) {
		t.Fatalf("ArmoredWith (%d bytes) kept no more than Armored (%d)", len(withCert), len(plain))
	}
	if p, err := keys.ParsePublicOne(plain); err != nil || p.CertifiedBy(old.Public()) {
		t.Fatalf("Armored keeps the certification (%v)", err)
	}
	if p, err := keys.ParsePublicOne(withCert); err != nil || !p.CertifiedBy(old.Public()) {
		t.Fatalf("ArmoredWith lost the certification (%v)", err)
	}

	// The WKD / DANE form of one address keeps them too, when asked.
	for _, certifiers := range [][]*keys.Public{nil, {old.Public()}} {
		bin, err := pub.KeyFor("alerts@example.org", certifiers...)
		if err != nil {
			t.Fatal(err)
		}
		p, err := keys.ParsePublicOne(bin)
		if err != nil || len(p.UserIDs) != 1 || p.CertifiedBy(old.Public()) != (certifiers != nil) {
			t.Fatalf("KeyFor with %d certifiers: %v %v", len(certifiers), p, err)
		}
	}

	// gpg sees the certifications, checked, by the old key.
	g.Import(withCert)
	out, _ := g.MustRun("--with-colons", "--check-sigs", pub.Fingerprint)
	oldID := oldFpr[len(oldFpr)-16:]
	// sig:!:... with the issuer's key id in field 5, class 10x.
	re := regexp.MustCompile(`(?m)^sig:!::\d+:` + oldID + `:[^\n]*:10x`)
	if n := len(re.FindAll(out, -1)); n != 2 {
		t.Fatalf("gpg --check-sigs shows %d good certifications by %s, want 2:\n%s", n, oldID, out)
	}
	human, _ := g.MustRun("--check-sigs", pub.Fingerprint)
	if !strings.Contains(string(human), "sig!") {
		t.Fatalf("gpg --check-sigs:\n%s", human)
	}

	// A third party certifies the new key too: ArmoredWith drops it.
	thirdFpr := g.GenKey("Third <third@example.net>", "future-default", "default", "never")
	g.MustRun("--default-key", thirdFpr, "--yes", "--quick-sign-key", pub.Fingerprint)
	signed, err := keys.ParsePublicOne(g.ExportPublic(pub.Fingerprint))
	if err != nil {
		t.Fatal(err)
	}
	third, err := keys.ParsePublicOne(g.ExportPublic(thirdFpr))
	if err != nil {
		t.Fatal(err)
	}
	if !signed.CertifiedBy(third) {
		t.Fatal("gpg's certification not seen")
	}
	kept, err := signed.ArmoredWith(old.Public())
	if err != nil {
		t.Fatal(err)
	}
	p, err := keys.ParsePublicOne(kept)
	if err != nil || !p.CertifiedBy(old.Public()) || p.CertifiedBy(third) {
		t.Fatalf("ArmoredWith(old) of a key certified by a third party: %v", err)
	}
}

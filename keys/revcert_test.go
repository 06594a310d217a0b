package keys_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
)

// The revocation certificate revokes the key: in gpg, which holds only
// the public key, and for keys.Public.
func TestRevocationCertificate(t *testing.T) {
	s, err := keys.GenerateKey(keys.KeySpec{Name: "TLD-OPS directory", Emails: []string{"ccdir@tldops.example", "alerts@tldops.example"}, Now: uidNow})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := s.RevocationCertificate(uidNow)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(rev, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\nComment: revocation certificate of "+s.Fingerprint())) {
		t.Errorf("certificate:\n%s", rev)
	}
	rc, err := keys.ParseRevocationCert(rev)
	if err != nil {
		t.Fatal(err)
	}
	if !rc.Of(s.Public()) {
		t.Errorf("certificate of %s, not of %s", rc.Issuer, s.Fingerprint())
	}
	revoked, err := s.Public().Revoke(rc)
	if err != nil {
		t.Fatal(err)
	}
	if err := revoked.Check(uidNow.Add(time.Hour)); !errors.Is(err, keys.ErrRevoked) {
		t.Errorf("Check of the revoked key: %v", err)
	}

	g := keystest.GPG(t)
	pub, _ := s.Public().Armored()
	g.Import(pub)
	g.Import(rev)
	out, _ := g.MustRun("--with-colons", "--list-keys", s.Fingerprint())
	if !bytes.Contains(out, []byte("pub:r:")) {
		t.Errorf("gpg does not show the key revoked:\n%s", out)
	}
	if sec, _, _ := g.Run("--with-colons", "--list-secret-keys"); bytes.Contains(sec, []byte("sec:")) {
		t.Errorf("the gpg home holds a secret key:\n%s", sec)
	}
}

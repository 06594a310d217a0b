// Package keystest helps tests that need OpenPGP keys: a throw-away GnuPG
// home (GPG) for interoperability tests, and deterministic directory keys
// (NewSecret).
//
// Interop tests never skip: a missing gpg fails the test with a hint, so a CI
// machine without GnuPG cannot pass silently.
package keystest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/ccdir/ccdir/keys"
)

// SecretTime is the creation time NewSecret passes to keys.Generate.
var SecretTime = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// NewSecret returns an Ed25519 directory key for "name <email>" that is the
// same on every run: the randomness is seeded from name and email, and the
// key is dated SecretTime (minus keys.KeyBackdate).
func NewSecret(t testing.TB, name, email string) *keys.Secret {
	t.Helper()
	seed := sha256.Sum256([]byte("ccdir keystest\x00" + name + "\x00" + email))
	s, err := keys.Generate(name, email, keys.AlgoEd25519, SecretTime, rand.NewChaCha8(seed))
	if err != nil {
		t.Fatalf("keystest.NewSecret: %v", err)
	}
	return s
}

// GPGHome is a temporary GNUPGHOME. Its methods fail the test on error.
type GPGHome struct {
	t   testing.TB
	Dir string // the GNUPGHOME directory
}

// GPG creates an empty GNUPGHOME that is removed (and its gpg-agent stopped)
// when the test ends. It fails the test if gpg is not on PATH.
func GPG(t testing.TB) *GPGHome {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Fatalf("gpg (GnuPG 2.2) not found on PATH: %v\nhint: apt-get install gnupg, or run scripts/test.sh, which checks the test tools", err)
	}
	// A short path under os.TempDir, not t.TempDir: gpg-agent puts its
	// socket in the home, and socket paths are limited to 107 bytes.
	dir, err := os.MkdirTemp("", "ccdir-gpg-")
	if err != nil {
		t.Fatal(err)
	}
	g := &GPGHome{t: t, Dir: dir}
	t.Cleanup(func() {
		cmd := exec.Command("gpgconf", "--kill", "all")
		cmd.Env = g.env()
		_ = cmd.Run() // gpgconf missing or no agent running: nothing to stop
		os.RemoveAll(dir)
	})
	return g
}

func (g *GPGHome) env() []string {
	return append(os.Environ(), "GNUPGHOME="+g.Dir, "LC_ALL=C", "LANGUAGE=C", "TZ=UTC")
}

// Run runs `gpg --batch --no-tty args...` in this home with LC_ALL=C and
// returns its output. It does not fail the test.
func (g *GPGHome) Run(args ...string) (stdout, stderr []byte, err error) {
	return g.RunInput(nil, args...)
}

// RunInput is Run with stdin.
func (g *GPGHome) RunInput(stdin []byte, args ...string) (stdout, stderr []byte, err error) {
	var out, errb bytes.Buffer
	cmd := exec.Command("gpg", append([]string{"--batch", "--no-tty"}, args...)...)
	cmd.Env = g.env()
	cmd.Dir = g.Dir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	cmd.Stdout = &out
	cmd.Stderr = &errb
	err = cmd.Run()
	return out.Bytes(), errb.Bytes(), err
}

// MustRun is Run that fails the test on a non-zero exit.
func (g *GPGHome) MustRun(args ...string) (stdout, stderr []byte) {
	g.t.Helper()
	stdout, stderr, err := g.Run(args...)
	if err != nil {
		g.t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return stdout, stderr
}

// GenKey runs `gpg --quick-gen-key uid algo usage expire` without a
// passphrase and returns the new fingerprint. For example
// ("A <a@x.pt>", "future-default", "default", "1y") makes ed25519 + cv25519,
// ("B <b@x.pt>", "rsa3072", "default", "never") makes a lone RSA primary key
// (add an encryption subkey with AddKey).
func (g *GPGHome) GenKey(uid, algo, usage, expire string) (fpr string) {
	g.t.Helper()
	return g.genKey(nil, uid, algo, usage, expire)
}

// GenKeyAt is GenKey with gpg's clock set to at (--faked-system-time), for
// keys that are already expired, say.
func (g *GPGHome) GenKeyAt(at time.Time, uid, algo, usage, expire string) (fpr string) {
	g.t.Helper()
	return g.genKey(fakedTime(at), uid, algo, usage, expire)
}

func fakedTime(at time.Time) []string {
	return []string{"--faked-system-time", at.UTC().Format("20060102T150405") + "!"}
}

func (g *GPGHome) genKey(extra []string, uid, algo, usage, expire string) string {
	g.t.Helper()
	args := append(extra, "--pinentry-mode", "loopback", "--passphrase", "", "--status-fd", "1",
		"--quick-gen-key", uid, algo, usage, expire)
	out, _ := g.MustRun(args...)
	return keyCreated(g.t, out)
}

// AddKey runs `gpg --quick-add-key fpr algo usage expire`, for example
// (fpr, "cv25519", "encr", "1y"), and returns the subkey's fingerprint.
func (g *GPGHome) AddKey(fpr, algo, usage, expire string) (subFpr string) {
	g.t.Helper()
	out, _ := g.MustRun("--pinentry-mode", "loopback", "--passphrase", "", "--status-fd", "1",
		"--quick-add-key", fpr, algo, usage, expire)
	return keyCreated(g.t, out)
}

func keyCreated(t testing.TB, status []byte) string {
	t.Helper()
	for _, line := range strings.Split(string(status), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == "[GNUPG:]" && f[1] == "KEY_CREATED" {
			return f[3]
		}
	}
	t.Fatalf("gpg printed no KEY_CREATED status:\n%s", status)
	return ""
}

// ExportPublic returns `gpg --armor --export fpr`.
func (g *GPGHome) ExportPublic(fpr string) []byte {
	g.t.Helper()
	out, _ := g.MustRun("--armor", "--export", fpr)
	if len(out) == 0 {
		g.t.Fatalf("gpg exported nothing for %s", fpr)
	}
	return out
}

// ExportSecret returns `gpg --armor --export-secret-keys fpr` (the keys made
// by GenKey have no passphrase).
func (g *GPGHome) ExportSecret(fpr string) []byte {
	g.t.Helper()
	out, _ := g.MustRun("--pinentry-mode", "loopback", "--passphrase", "", "--armor", "--export-secret-keys", fpr)
	if len(out) == 0 {
		g.t.Fatalf("gpg exported no secret key for %s", fpr)
	}
	return out
}

// Import imports keys (armored or binary) into this home.
func (g *GPGHome) Import(data []byte) {
	g.t.Helper()
	path := g.WriteFile("import.pgp", data)
	g.MustRun("--import", path)
}

// WriteFile writes data to name inside the home and returns its path.
func (g *GPGHome) WriteFile(name string, data []byte) string {
	g.t.Helper()
	path := filepath.Join(g.Dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		g.t.Fatal(err)
	}
	return path
}

// RevocationCert returns the revocation certificate gpg 2.2 stored for fpr
// when it made the key, made importable: gpg defuses it with a ':' in front
// of the BEGIN line.
func (g *GPGHome) RevocationCert(fpr string) []byte {
	g.t.Helper()
	data, err := os.ReadFile(filepath.Join(g.Dir, "openpgp-revocs.d", strings.ToUpper(fpr)+".rev"))
	if err != nil {
		g.t.Fatalf("revocation certificate for %s: %v", fpr, err)
	}
	fixed := bytes.Replace(data, []byte("\n:-----BEGIN PGP"), []byte("\n-----BEGIN PGP"), 1)
	if bytes.Equal(fixed, data) {
		g.t.Fatalf("revocation certificate for %s: no defused BEGIN line found", fpr)
	}
	return fixed
}

// Revoke imports the stored revocation certificate of fpr.
func (g *GPGHome) Revoke(fpr string) {
	g.t.Helper()
	g.Import(g.RevocationCert(fpr))
}

// String describes the home for messages.
func (g *GPGHome) String() string { return fmt.Sprintf("GNUPGHOME=%s", g.Dir) }

// Reexpire returns s's public key, armored, with new self-signatures
// dated at that make the primary key expire at primary and every subkey
// at sub (zero: never): the key as its owner refreshes it. s is left as
// it is.
func Reexpire(t testing.TB, s *keys.Secret, at, primary, sub time.Time) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := s.Entity().SerializePrivateWithoutSigning(&buf, nil); err != nil {
		t.Fatalf("keystest.Reexpire: %v", err)
	}
	e, err := openpgp.ReadEntity(packet.NewReader(&buf))
	if err != nil {
		t.Fatalf("keystest.Reexpire: %v", err)
	}
	cfg := &packet.Config{Time: func() time.Time { return at }, DefaultHash: keys.SignatureHash}
	lifetime := func(created, exp time.Time) *uint32 {
		if exp.IsZero() {
			return nil
		}
		secs := uint32(exp.Sub(created) / time.Second)
		return &secs
	}
	for _, id := range e.Identities {
		sig := id.SelfCertifications[len(id.SelfCertifications)-1].Packet
		sig.CreationTime, sig.KeyLifetimeSecs = at, lifetime(e.PrimaryKey.CreationTime, primary)
		if err := sig.SignUserId(id.UserId.Id, e.PrimaryKey, e.PrivateKey, cfg); err != nil {
			t.Fatalf("keystest.Reexpire: %v", err)
		}
	}
	for i := range e.Subkeys {
		sk := &e.Subkeys[i]
		sig := sk.Bindings[len(sk.Bindings)-1].Packet
		sig.CreationTime, sig.KeyLifetimeSecs = at, lifetime(sk.PublicKey.CreationTime, sub)
		if err := sig.SignKey(sk.PublicKey, e.PrivateKey, cfg); err != nil {
			t.Fatalf("keystest.Reexpire: %v", err)
		}
	}
	var bin bytes.Buffer
	if err := e.Serialize(&bin); err != nil {
		t.Fatalf("keystest.Reexpire: %v", err)
	}
	var out bytes.Buffer
	w, err := armor.Encode(&out, openpgp.PublicKeyType, nil)
	if err == nil {
		_, err = w.Write(bin.Bytes())
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		t.Fatalf("keystest.Reexpire: %v", err)
	}
	return out.Bytes()
}

package keys_test

// Interoperability with GnuPG 2.2 and Sequoia (sq 0.27). These tests never
// skip: a missing tool fails them with a hint.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
)

// gpgVerify runs gpg --verify on sig over data and reports the status lines.
func gpgVerify(t *testing.T, g *keystest.GPGHome, sig, data []byte) (status string, err error) {
	t.Helper()
	sigPath := g.WriteFile("data.sig", sig)
	dataPath := g.WriteFile("data", data)
	stdout, stderr, err := g.Run("--status-fd", "1", "--verify", sigPath, dataPath)
	return string(stdout) + string(stderr), err
}

func TestGPGVerifiesOurSignatures(t *testing.T) {
	for algo, s := range algoKeys(t) {
		t.Run(string(algo), func(t *testing.T) {
			g := keystest.GPG(t)
			pub, err := s.Public().Armored()
			if err != nil {
				t.Fatal(err)
			}
			g.Import(pub)
			// Several lengths, so that the base64 text ends with and
			// without '=' padding (gpg 2.2 needs the CRC line in the latter case).
			data := []byte("Content-Type: text/plain\r\n\r\nccTLD directory \xc3\xa9\r\n")
			for i := 0; i < 6; i++ {
				msg := append(bytes.Clone(data), bytes.Repeat([]byte{'.'}, i)...)
				var asc bytes.Buffer
				if err := s.ArmoredDetachSign(&asc, bytes.NewReader(msg)); err != nil {
					t.Fatal(err)
				}
				out, err := gpgVerify(t, g, asc.Bytes(), msg)
				if err != nil || !strings.Contains(out, "[GNUPG:] VALIDSIG "+s.Fingerprint()) ||
					!strings.Contains(out, "Good signature") {
					t.Fatalf("gpg --verify armored (message %d):\n%s\n%v\n%s", i, asc.Bytes(), err, out)
				}
				if !strings.Contains(out, " 8 00 ") { // VALIDSIG ... hash-algo (8 = SHA-256) sig-class (00 = binary)
					t.Errorf("gpg saw no SHA-256 binary signature:\n%s", out)
				}
			}
			var asc bytes.Buffer
			if err := s.ArmoredDetachSign(&asc, bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}

			bin, err := s.Sign(data)
			if err != nil {
				t.Fatal(err)
			}
			if out, err := gpgVerify(t, g, bin, data); err != nil || !strings.Contains(out, "[GNUPG:] GOODSIG ") {
				t.Errorf("gpg --verify binary: %v\n%s", err, out)
			}

			bad := bytes.Replace(data, []byte("ccTLD"), []byte("ccTLd"), 1)
			if out, err := gpgVerify(t, g, asc.Bytes(), bad); err == nil || !strings.Contains(out, "[GNUPG:] BADSIG ") {
				t.Errorf("gpg accepted a changed file: %v\n%s", err, out)
			}
		})
	}
}

// TestGPGReadsOurSecretKey: gpg imports a passphrase-protected key written
// by WriteFile, signs with it, and we verify that signature.
func TestGPGReadsOurSecretKey(t *testing.T) {
	s, err := keys.Generate("Dir", "dir@b.pt", keys.AlgoEd25519, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	g := keystest.GPG(t)
	path := filepath.Join(g.Dir, "dir.key")
	if err := s.WriteFile(path, []byte("s3cret")); err != nil {
		t.Fatal(err)
	}
	g.MustRun("--pinentry-mode", "loopback", "--passphrase", "s3cret", "--import", path)
	data := []byte("signed by gpg with our key\n")
	dataPath := g.WriteFile("msg", data)
	if _, stderr, err := g.Run("--pinentry-mode", "loopback", "--passphrase", "wrong", "--local-user", s.Fingerprint(),
		"--detach-sign", "-o", dataPath+".bad.sig", dataPath); err == nil {
		t.Errorf("gpg signed with a wrong passphrase; is the key really protected?\n%s", stderr)
	}
	g.MustRun("--pinentry-mode", "loopback", "--passphrase", "s3cret", "--local-user", s.Fingerprint(),
		"--detach-sign", "-o", dataPath+".sig", dataPath)
	sig, err := os.ReadFile(dataPath + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Public().Verify(data, sig); err != nil {
		t.Errorf("verify gpg's signature: %v", err)
	}
}

// TestReadGPGSecretKey: keys exported by gpg load, with their passphrase.
func TestReadGPGSecretKey(t *testing.T) {
	g := keystest.GPG(t)
	out, _ := g.MustRun("--pinentry-mode", "loopback", "--passphrase", "pw", "--status-fd", "1",
		"--quick-gen-key", "Prot <p@x.pt>", "future-default", "default", "never")
	f := strings.Fields(string(out[bytes.Index(out, []byte("KEY_CREATED")):]))
	fpr := f[2]
	exported, _ := g.MustRun("--pinentry-mode", "loopback", "--passphrase", "pw", "--armor", "--export-secret-keys", fpr)
	path := filepath.Join(t.TempDir(), "gpg.key")
	if err := os.WriteFile(path, exported, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.ReadSecretFile(path, nil); !errors.Is(err, keys.ErrPassphraseRequired) {
		t.Errorf("no passphrase: %v", err)
	}
	if _, err := keys.ReadSecretFile(path, []byte("PW")); !errors.Is(err, keys.ErrWrongPassphrase) {
		t.Errorf("wrong passphrase: %v", err)
	}
	s, err := keys.ReadSecretFile(path, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Fingerprint() != fpr {
		t.Errorf("loaded %s, want %s", s.Fingerprint(), fpr)
	}
	var asc bytes.Buffer
	if err := s.ArmoredDetachSign(&asc, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if out, err := gpgVerify(t, g, asc.Bytes(), []byte("x")); err != nil || !strings.Contains(out, "GOODSIG") {
		t.Errorf("gpg rejects a signature by its own key loaded here: %v\n%s", err, out)
	}

	// A secret-subkeys export has a stub instead of the primary secret key.
	stub, _ := g.MustRun("--pinentry-mode", "loopback", "--passphrase", "pw", "--armor", "--export-secret-subkeys", fpr)
	stubPath := filepath.Join(t.TempDir(), "stub.key")
	if err := os.WriteFile(stubPath, stub, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.ReadSecretFile(stubPath, []byte("pw")); err == nil || !strings.Contains(err.Error(), "gnu-dummy") {
		t.Errorf("secret-subkeys export: %v, want a gnu-dummy error", err)
	}
}

func TestGPGKeys(t *testing.T) {
	g := keystest.GPG(t)
	ed := g.GenKey("Ana Silva <Ana@DNS.pt>", "future-default", "default", "1y")
	rsa := g.GenKey("Rui <rui@nic.example>", "rsa3072", "default", "2y")
	g.AddKey(rsa, "rsa3072", "encr", "2y")
	weak := g.GenKey("Weak <weak@x.pt>", "rsa1024", "default", "1y")
	g.AddKey(weak, "rsa1024", "encr", "1y")
	weakSub := g.GenKey("Weak Sub <ws@x.pt>", "rsa2048", "default", "1y")
	g.AddKey(weakSub, "rsa1024", "encr", "1y")
	expired := g.GenKeyAt(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), "Old <old@x.pt>", "future-default", "default", "1d")
	revoked := g.GenKey("Gone <gone@x.pt>", "future-default", "default", "1y")
	g.Revoke(revoked)
	signOnly := g.GenKey("Sig <sig@x.pt>", "ed25519", "sign", "never")
	twoEnc := g.GenKey("Two <two@x.pt>", "future-default", "default", "1y")
	g.AddKey(twoEnc, "cv25519", "encr", "1y")
	nist := g.GenKey("Nist <nist@x.pt>", "nistp256", "default", "never")
	g.AddKey(nist, "nistp256", "encr", "never")
	multi := g.GenKey("Multi <multi@x.pt>", "future-default", "default", "never")
	g.MustRun("--quick-add-uid", multi, "Multi Two <MULTI2@x.pt>")
	bare := g.GenKey("Bare@X.pt", "future-default", "default", "never")
	// Only now: a check dated before gpg made a self-signature fails (the
	// clock trap), and making these keys takes a few seconds.
	now := time.Now()

	cases := []struct {
		name, fpr, algo string
		is              error
		msg             string
	}{
		{"ed25519", ed, "ed25519", nil, ""},
		{"rsa3072", rsa, "rsa3072", nil, ""},
		{"weak primary", weak, "rsa1024", keys.ErrWeakKey, "RSA 1024 bits, at least 2048 required"},
		{"weak subkey", weakSub, "rsa2048", keys.ErrWeakKey, "RSA 1024 bits, at least 2048 required"},
		{"expired", expired, "ed25519", keys.ErrExpired, "expired on 2020-01-02"},
		{"revoked", revoked, "ed25519", keys.ErrRevoked, ""},
		{"sign only", signOnly, "ed25519", keys.ErrNoEncryptionKey, ""},
		{"two encryption subkeys", twoEnc, "ed25519", nil, ""},
		{"nistp256", nist, "nistp256", nil, ""},
		{"two user IDs", multi, "ed25519", nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := keys.ParsePublicOne(g.ExportPublic(c.fpr))
			if err != nil {
				t.Fatal(err)
			}
			if p.Fingerprint != c.fpr || p.Algorithm != c.algo {
				t.Errorf("got %s %s, want %s %s", p.Algorithm, p.Fingerprint, c.algo, c.fpr)
			}
			err = p.Check(now)
			if c.is == nil && err != nil {
				t.Fatalf("Check: %v", err)
			}
			if c.is != nil && (!errors.Is(err, c.is) || !strings.Contains(err.Error(), c.msg)) {
				t.Fatalf("Check: %v, want %v %q", err, c.is, c.msg)
			}
			if err != nil {
				t.Logf("Check: %v", err)
			}
			// Parsed for a check at now (as a digest reads thousands of
			// keys, each signature verified once), the key gives the same
			// verdict and emails, then and 400 days later.
			pa, errA := keys.ParsePublicOneAt(g.ExportPublic(c.fpr), now)
			if errA != nil {
				t.Fatal(errA)
			}
			later := now.AddDate(0, 0, 400)
			if got, want := fmt.Sprint(pa.Check(now)), fmt.Sprint(err); got != want {
				t.Errorf("Check after ParsePublicOneAt: %s, want %s", got, want)
			}
			if got, want := fmt.Sprint(pa.Check(later)), fmt.Sprint(p.Check(later)); got != want {
				t.Errorf("Check 400 days later after ParsePublicOneAt: %s, want %s", got, want)
			}
			if strings.Join(pa.Emails, "|") != strings.Join(p.Emails, "|") {
				t.Errorf("ParsePublicOneAt emails %q, want %q", pa.Emails, p.Emails)
			}
			// Armored keeps what matters: same key, same verdict.
			a, err := p.Armored()
			if err != nil {
				t.Fatal(err)
			}
			p2, err := keys.ParsePublicOne(a)
			if err != nil {
				t.Fatal(err)
			}
			if err2 := p2.Check(now); p2.Fingerprint != p.Fingerprint || !errors.Is(err2, c.is) && !(err2 == nil && c.is == nil) {
				t.Errorf("after Armored: %s %v", p2.Fingerprint, err2)
			}
		})
	}

	t.Run("fields", func(t *testing.T) {
		p, _ := keys.ParsePublicOne(g.ExportPublic(ed))
		if !p.HasEmail("ana@dns.pt") || strings.Join(p.UserIDs, "|") != "Ana Silva <Ana@DNS.pt>" {
			t.Errorf("UserIDs %q Emails %q", p.UserIDs, p.Emails)
		}
		if d := p.Expires.Sub(p.Created); d < 364*24*time.Hour || d > 367*24*time.Hour {
			t.Errorf("Expires %v is %v after Created %v, want 1y", p.Expires, d, p.Created)
		}
		if err := p.Check(p.Expires.Add(time.Hour)); !errors.Is(err, keys.ErrExpired) {
			t.Errorf("Check after Expires: %v", err)
		}
		if len(p.Entity().Subkeys) != 1 {
			t.Errorf("%d subkeys", len(p.Entity().Subkeys))
		}
		m, _ := keys.ParsePublicOne(g.ExportPublic(multi))
		if strings.Join(m.UserIDs, "|") != "Multi <multi@x.pt>|Multi Two <MULTI2@x.pt>" ||
			strings.Join(m.Emails, "|") != "multi@x.pt|multi2@x.pt" {
			t.Errorf("two user IDs: %q %q", m.UserIDs, m.Emails)
		}
		b, _ := keys.ParsePublicOne(g.ExportPublic(bare))
		if strings.Join(b.UserIDs, "|") != "Bare@X.pt" || !b.HasEmail("bare@x.pt") {
			t.Errorf("bare email user ID: %q %q", b.UserIDs, b.Emails)
		}
		two, _ := keys.ParsePublicOne(g.ExportPublic(twoEnc))
		if len(two.Entity().Subkeys) != 2 {
			t.Errorf("two encryption subkeys: %d subkeys parsed", len(two.Entity().Subkeys))
		}
		// Armored of a gpg key imports into a fresh gpg.
		a, _ := p.Armored()
		g2 := keystest.GPG(t)
		g2.Import(a)
		if out, _ := g2.MustRun("--with-colons", "--list-keys", ed); !strings.Contains(string(out), "fpr:::::::::"+ed+":") {
			t.Errorf("gpg does not list the re-armored key:\n%s", out)
		}
	})

	t.Run("secret keys refused", func(t *testing.T) {
		exports := map[string][]string{
			"armored":         {"--armor", "--export-secret-keys", ed},
			"binary":          {"--export-secret-keys", ed},
			"secret subkeys":  {"--armor", "--export-secret-subkeys", ed},
			"mixed in bundle": {"--armor", "--export-secret-keys", rsa},
		}
		for name, args := range exports {
			data, _ := g.MustRun(append([]string{"--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
			if name == "mixed in bundle" {
				data = append(g.ExportPublic(ed), data...)
			}
			if ps, err := keys.ParsePublic(data); !errors.Is(err, keys.ErrSecretKey) {
				t.Errorf("%s: %d keys, %v; want ErrSecretKey", name, len(ps), err)
			}
		}
	})

	t.Run("bundles", func(t *testing.T) {
		want := []string{ed, rsa, twoEnc}
		armored, _ := g.MustRun("--armor", "--export", ed, rsa, twoEnc)
		binary, _ := g.MustRun("--export", ed, rsa, twoEnc)
		cat := bytes.Join([][]byte{g.ExportPublic(ed), g.ExportPublic(rsa), g.ExportPublic(twoEnc)}, nil)
		crlf := bytes.ReplaceAll(cat, []byte("\n"), []byte("\r\n"))
		for name, data := range map[string][]byte{"one armor block": armored, "binary": binary, "cat": cat, "crlf": crlf} {
			ps, err := keys.ParsePublic(data)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got := map[string]bool{}
			for _, p := range ps {
				got[p.Fingerprint] = true
			}
			if len(ps) != 3 || !got[want[0]] || !got[want[1]] || !got[want[2]] {
				t.Errorf("%s: %d keys %v, want %v", name, len(ps), got, want)
			}
			if _, err := keys.ParsePublicOne(data); err == nil {
				t.Errorf("%s: ParsePublicOne accepted 3 keys", name)
			}
		}
	})
}

func TestSequoia(t *testing.T) {
	if _, err := exec.LookPath("sq"); err != nil {
		t.Fatalf("sq (Sequoia) not found on PATH: %v\nhint: apt-get install sq, or run scripts/test.sh", err)
	}
	dir := t.TempDir()
	sq := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command("sq", args...)
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("sq %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
		}
		return out
	}
	sq("key", "generate", "--userid", "Sq User <Sq.User@Example.ORG>", "--export", "key.pgp")
	cert := sq("key", "extract-cert", "key.pgp")

	p, err := keys.ParsePublicOne(cert)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check(time.Now()); err != nil {
		t.Errorf("Check sq key: %v", err)
	}
	if p.Algorithm != "ed25519" || !p.HasEmail("sq.user@example.org") {
		t.Errorf("sq key: %s, user IDs %q", p.Algorithm, p.UserIDs)
	}
	secret, err := os.ReadFile(filepath.Join(dir, "key.pgp"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.ParsePublic(secret); !errors.Is(err, keys.ErrSecretKey) {
		t.Errorf("sq secret key: %v, want ErrSecretKey", err)
	}

	// sq verifies our detached signature, and we verify sq's.
	s := keystest.NewSecret(t, "Dir", "dir@b.pt")
	pub, _ := s.Public().Armored()
	data := []byte("signed for sq\n")
	var asc bytes.Buffer
	if err := s.ArmoredDetachSign(&asc, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"dir.pgp": pub, "data": data, "data.asc": asc.Bytes()} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sq("verify", "--signer-cert", "dir.pgp", "--detached", "data.asc", "data")

	sqSig := sq("sign", "--detached", "--signer-key", "key.pgp", "data")
	if _, err := p.Verify(data, sqSig); err != nil {
		t.Errorf("verify sq's signature: %v", err)
	}
}

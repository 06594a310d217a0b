package keys_test

import (
	"bytes"
	"crypto"
	"errors"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"

	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
)

var (
	rsaOnce   sync.Once
	rsaSecret *keys.Secret
	rsaErr    error
)

// rsaKey returns one RSA-3072 directory key shared by the tests (RSA
// generation takes a second or more, and is not reproducible).
func rsaKey(t testing.TB) *keys.Secret {
	t.Helper()
	rsaOnce.Do(func() {
		rsaSecret, rsaErr = keys.Generate("RSA Directory", "rsa@dir.example", keys.AlgoRSA3072, time.Now(), nil)
	})
	if rsaErr != nil {
		t.Fatal(rsaErr)
	}
	return rsaSecret
}

// algoKeys returns a fresh Ed25519 key and the shared RSA-3072 key.
func algoKeys(t *testing.T) map[keys.Algo]*keys.Secret {
	t.Helper()
	ed, err := keys.Generate("Ed Directory", "ed@dir.example", keys.AlgoEd25519, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return map[keys.Algo]*keys.Secret{keys.AlgoEd25519: ed, keys.AlgoRSA3072: rsaKey(t)}
}

var fprRE = regexp.MustCompile(`^[0-9A-F]{40}$`)

func TestParseAlgo(t *testing.T) {
	for in, want := range map[string]keys.Algo{
		"": keys.AlgoEd25519, "ed25519": keys.AlgoEd25519, "ED25519": keys.AlgoEd25519,
		"rsa3072": keys.AlgoRSA3072, " rsa4096 ": keys.AlgoRSA4096,
	} {
		got, err := keys.ParseAlgo(in)
		if err != nil || got != want {
			t.Errorf("ParseAlgo(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"rsa2048", "rsa1024", "dsa", "cv25519", "x"} {
		if got, err := keys.ParseAlgo(in); err == nil {
			t.Errorf("ParseAlgo(%q) = %q, want error", in, got)
		}
	}
}

func TestGenerate(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 890, time.UTC)
	cases := []struct {
		algo    keys.Algo
		primary packet.PublicKeyAlgorithm
		sub     packet.PublicKeyAlgorithm
	}{
		{keys.AlgoEd25519, packet.PubKeyAlgoEdDSA, packet.PubKeyAlgoECDH},
		{keys.AlgoRSA3072, packet.PubKeyAlgoRSA, packet.PubKeyAlgoRSA},
	}
	for _, c := range cases {
		t.Run(string(c.algo), func(t *testing.T) {
			s, err := keys.Generate("CCTLD Directory", "Dir@Example.PT", c.algo, now, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !fprRE.MatchString(s.Fingerprint()) {
				t.Errorf("fingerprint %q is not 40 uppercase hex digits", s.Fingerprint())
			}
			p := s.Public()
			if p.Fingerprint != s.Fingerprint() {
				t.Errorf("public fingerprint %s != %s", p.Fingerprint, s.Fingerprint())
			}
			if p.Algorithm != string(c.algo) {
				t.Errorf("Algorithm = %q, want %q", p.Algorithm, c.algo)
			}
			wantCreated := time.Date(2026, 3, 4, 5, 5, 7, 0, time.UTC) // truncated, minus KeyBackdate
			if !p.Created.Equal(wantCreated) {
				t.Errorf("Created = %v, want %v", p.Created, wantCreated)
			}
			if !p.Expires.IsZero() {
				t.Errorf("Expires = %v, want never", p.Expires)
			}
			if got := strings.Join(p.UserIDs, "|"); got != "CCTLD Directory <Dir@Example.PT>" {
				t.Errorf("UserIDs = %q", got)
			}
			if got := strings.Join(p.Emails, "|"); got != "dir@example.pt" {
				t.Errorf("Emails = %q", got)
			}
			e := s.Entity()
			if e.PrimaryKey.Version != 4 || e.PrimaryKey.PubKeyAlgo != c.primary {
				t.Errorf("primary key v%d algo %d, want v4 algo %d", e.PrimaryKey.Version, e.PrimaryKey.PubKeyAlgo, c.primary)
			}
			if len(e.Subkeys) != 1 || e.Subkeys[0].PublicKey.PubKeyAlgo != c.sub {
				t.Fatalf("subkeys %+v, want one of algo %d", e.Subkeys, c.sub)
			}
			if e.PrivateKey == nil || e.PrivateKey.Encrypted {
				t.Error("secret entity must hold an unlocked private key")
			}
			if p.Entity().PrivateKey != nil || p.Entity().Subkeys[0].PrivateKey != nil {
				t.Error("Public().Entity() holds secret key material")
			}
			if err := p.Check(now); err != nil {
				t.Errorf("Check(now) = %v", err)
			}
			if err := p.Check(now.AddDate(30, 0, 0)); err != nil {
				t.Errorf("Check(now+30y) = %v; the key has no expiry", err)
			}
		})
	}
}

func TestGenerateRejects(t *testing.T) {
	now := time.Now()
	for _, c := range []struct{ name, email string }{
		{"", "a@b.pt"},
		{"A (x)", "a@b.pt"},
		{"A <b>", "a@b.pt"},
		{"A\nB", "a@b.pt"},
		{"A", ""},
		{"A", "no-at-sign"},
		{"A", "a@"},
		{"A", "<a@b.pt>"},
		{"A", "a b@c.pt"},
	} {
		if _, err := keys.Generate(c.name, c.email, keys.AlgoEd25519, now, nil); err == nil {
			t.Errorf("Generate(%q, %q) succeeded", c.name, c.email)
		}
	}
	if _, err := keys.Generate("A", "a@b.pt", keys.Algo("dsa1024"), now, nil); err == nil {
		t.Error("Generate with algo dsa1024 succeeded")
	}
}

// TestCheckClockTrap: a self-signature dated after the time of the check is
// not valid. Generate backdates keys by KeyBackdate to stay clear of it.
func TestCheckClockTrap(t *testing.T) {
	now := time.Now()
	s, err := keys.Generate("A", "a@b.pt", keys.AlgoEd25519, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Public().Check(now.Add(-keys.KeyBackdate / 2)); err != nil {
		t.Errorf("Check with a clock %v behind: %v", keys.KeyBackdate/2, err)
	}
	err = s.Public().Check(now.Add(-2 * keys.KeyBackdate))
	if !errors.Is(err, keys.ErrNoValidSelfSig) || !strings.Contains(err.Error(), "in the future") {
		t.Errorf("Check before creation = %v, want ErrNoValidSelfSig mentioning the future", err)
	}
	// The validity cache must not stick: a later check succeeds again.
	if err := s.Public().Check(now); err != nil {
		t.Errorf("Check(now) after a failed check: %v", err)
	}
}

func TestWriteReadSecret(t *testing.T) {
	for algo, s := range algoKeys(t) {
		for _, pass := range []string{"", "correct horse battery staple"} {
			name := string(algo) + "/plain"
			if pass != "" {
				name = string(algo) + "/passphrase"
			}
			t.Run(name, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "dir.key")
				if err := s.WriteFile(path, []byte(pass)); err != nil {
					t.Fatal(err)
				}
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("mode %04o, want 0600", fi.Mode().Perm())
				}
				data, _ := os.ReadFile(path)
				if !bytes.HasPrefix(data, []byte("-----BEGIN PGP PRIVATE KEY BLOCK-----\n")) {
					t.Errorf("file does not start with a private key armor line:\n%.80s", data)
				}
				el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
				if err != nil || len(el) != 1 {
					t.Fatalf("file: %d entities, %v", len(el), err)
				}
				if el[0].PrivateKey.Encrypted != (pass != "") || el[0].Subkeys[0].PrivateKey.Encrypted != (pass != "") {
					t.Errorf("private keys encrypted = %v/%v, want %v", el[0].PrivateKey.Encrypted,
						el[0].Subkeys[0].PrivateKey.Encrypted, pass != "")
				}

				got, err := keys.ReadSecretFile(path, []byte(pass))
				if err != nil {
					t.Fatalf("ReadSecretFile: %v", err)
				}
				if got.Fingerprint() != s.Fingerprint() {
					t.Errorf("read back %s, want %s", got.Fingerprint(), s.Fingerprint())
				}
				data2 := []byte("loaded key signs")
				sig, err := got.Sign(data2)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := s.Public().Verify(data2, sig); err != nil {
					t.Errorf("signature of the loaded key: %v", err)
				}
				// The in-memory key stays unlocked after an encrypted write.
				if _, err := s.Sign(data2); err != nil {
					t.Errorf("original key after WriteFile: %v", err)
				}

				if pass == "" {
					if _, err := keys.ReadSecretFile(path, []byte("unused")); err != nil {
						t.Errorf("unencrypted key with a passphrase: %v", err)
					}
					return
				}
				if _, err := keys.ReadSecretFile(path, nil); !errors.Is(err, keys.ErrPassphraseRequired) {
					t.Errorf("no passphrase: %v, want ErrPassphraseRequired", err)
				}
				if _, err := keys.ReadSecretFile(path, []byte("Correct horse battery staple")); !errors.Is(err, keys.ErrWrongPassphrase) {
					t.Errorf("wrong passphrase: %v, want ErrWrongPassphrase", err)
				}
			})
		}
	}
}

func TestWriteFileRefusesExisting(t *testing.T) {
	s := keystest.NewSecret(t, "A", "a@b.pt")
	path := filepath.Join(t.TempDir(), "dir.key")
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := s.WriteFile(path, nil)
	if !errors.Is(err, fs.ErrExist) {
		t.Errorf("WriteFile over an existing file: %v, want ErrExist", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "precious" {
		t.Errorf("existing file changed to %q", data)
	}
	// A failed write leaves nothing behind.
	missing := filepath.Join(t.TempDir(), "no-such-dir", "dir.key")
	if err := s.WriteFile(missing, nil); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
	if _, err := os.Lstat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after a failed write: %v", err)
	}
}

func TestReadSecretFilePermissions(t *testing.T) {
	s := keystest.NewSecret(t, "A", "a@b.pt")
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		path := filepath.Join(t.TempDir(), "dir.key")
		if err := s.WriteFile(path, nil); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := keys.ReadSecretFile(path, nil)
		if !errors.Is(err, keys.ErrInsecurePermissions) {
			t.Errorf("mode %04o: %v, want ErrInsecurePermissions", mode, err)
			continue
		}
		for _, want := range []string{"0" + strconv.FormatUint(uint64(mode), 8), "chmod 600 " + path} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("mode %04o: error %q does not mention %q", mode, err, want)
			}
		}
	}
}

func TestReadSecretFileRefuses(t *testing.T) {
	dir := t.TempDir()
	a := keystest.NewSecret(t, "A", "a@b.pt")
	b := keystest.NewSecret(t, "B", "b@b.pt")
	pubA, err := a.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	secret := func(s *keys.Secret) []byte {
		path := filepath.Join(t.TempDir(), "k")
		if err := s.WriteFile(path, nil); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(path)
		return data
	}
	for _, c := range []struct {
		name string
		data []byte
		want string
		is   error
	}{
		{"empty", nil, "", keys.ErrNoKey},
		{"text", []byte("hello\n"), "", keys.ErrNoKey},
		{"public", pubA, "public key, not a secret key", nil},
		{"two", append(secret(a), secret(b)...), "2 keys", nil},
		{"huge", bytes.Repeat([]byte{'x'}, keys.MaxKeyBytes+1), "", keys.ErrTooLarge},
	} {
		path := filepath.Join(dir, c.name)
		if err := os.WriteFile(path, c.data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := keys.ReadSecretFile(path, nil)
		if err == nil || (c.is != nil && !errors.Is(err, c.is)) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %v %q", c.name, err, c.is, c.want)
		}
	}
	if _, err := keys.ReadSecretFile(filepath.Join(dir, "missing"), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestSignVerify(t *testing.T) {
	other := keystest.NewSecret(t, "Other", "other@b.pt")
	for algo, s := range algoKeys(t) {
		t.Run(string(algo), func(t *testing.T) {
			at := time.Now().Add(time.Hour).Truncate(time.Second)
			s.SetClock(func() time.Time { return at })
			defer s.SetClock(nil)
			data := []byte("Subject: x\r\n\r\nbody with\r\nCRLF \x00\xff\r\n")
			sig, err := s.Sign(data)
			if err != nil {
				t.Fatal(err)
			}
			p, err := packet.Read(bytes.NewReader(sig))
			if err != nil {
				t.Fatal(err)
			}
			ps, ok := p.(*packet.Signature)
			if !ok || ps.SigType != packet.SigTypeBinary || ps.Hash != crypto.SHA256 {
				t.Fatalf("signature packet %T type %v hash %v, want binary SHA-256", p, ps.SigType, ps.Hash)
			}
			pub := s.Public()
			when, err := pub.VerifyAt(data, sig, at.Add(time.Minute))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !when.Equal(at) {
				t.Errorf("signature time %v, want the clock's %v", when, at)
			}
			if _, err := pub.VerifyAt(data, sig, at.Add(-time.Minute)); !errors.Is(err, keys.ErrBadSignature) {
				t.Errorf("signature from the future: %v, want ErrBadSignature", err)
			}
			for i := range data {
				bad := bytes.Clone(data)
				bad[i] ^= 0x01
				if _, err := pub.VerifyAt(bad, sig, at); !errors.Is(err, keys.ErrBadSignature) {
					t.Fatalf("byte %d changed: %v, want ErrBadSignature", i, err)
				}
			}
			if _, err := pub.VerifyAt(append(bytes.Clone(data), '\n'), sig, at); !errors.Is(err, keys.ErrBadSignature) {
				t.Errorf("byte appended: %v", err)
			}
			otherSig, err := other.Sign(data)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pub.Verify(data, otherSig); !errors.Is(err, keys.ErrBadSignature) {
				t.Errorf("other key's signature: %v, want ErrBadSignature", err)
			}
			if _, err := pub.VerifyAt(data, sig[:len(sig)-3], at); !errors.Is(err, keys.ErrBadSignature) {
				t.Errorf("truncated signature: %v", err)
			}
			if _, err := pub.VerifyAt(data, nil, at); !errors.Is(err, keys.ErrBadSignature) {
				t.Errorf("empty signature: %v", err)
			}
		})
	}
}

func TestArmoredDetachSign(t *testing.T) {
	s := keystest.NewSecret(t, "A", "a@b.pt")
	data := []byte("directory export\n")
	var out bytes.Buffer
	if err := s.ArmoredDetachSign(&out, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(out.Bytes(), []byte("-----BEGIN PGP SIGNATURE-----\n")) ||
		!bytes.HasSuffix(out.Bytes(), []byte("-----END PGP SIGNATURE-----\n")) {
		t.Fatalf("not an armored signature:\n%s", out.Bytes())
	}
	if _, err := s.Public().Verify(data, out.Bytes()); err != nil {
		t.Errorf("Verify armored: %v", err)
	}
	if _, err := s.Public().Verify([]byte("directory export\r\n"), out.Bytes()); !errors.Is(err, keys.ErrBadSignature) {
		t.Errorf("binary signature accepted CRLF data: %v", err)
	}
}

func TestArmored(t *testing.T) {
	s := keystest.NewSecret(t, "A", "a@b.pt")
	a1, err := s.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := s.Public().Armored()
	if !bytes.Equal(a1, a2) {
		t.Error("Armored differs between calls")
	}
	if !bytes.HasPrefix(a1, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n")) || bytes.Contains(a1, []byte("PRIVATE")) {
		t.Errorf("unexpected armor:\n%s", a1)
	}
	p, err := keys.ParsePublicOne(a1)
	if err != nil {
		t.Fatal(err)
	}
	if p.Fingerprint != s.Fingerprint() || !p.Created.Equal(s.Public().Created) {
		t.Errorf("round trip gave %s created %v", p.Fingerprint, p.Created)
	}
	a3, _ := p.Armored()
	if !bytes.Equal(a1, a3) {
		t.Error("Armored of the re-parsed key differs")
	}
	if err := p.Check(time.Now()); err != nil {
		t.Errorf("re-parsed key: %v", err)
	}
}

func TestRevokedByGo(t *testing.T) {
	s, err := keys.Generate("A", "a@b.pt", keys.AlgoEd25519, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Entity().Revoke(packet.KeyCompromised, "laptop stolen", nil); err != nil {
		t.Fatal(err)
	}
	var bin bytes.Buffer
	if err := s.Entity().Serialize(&bin); err != nil {
		t.Fatal(err)
	}
	p, err := keys.ParsePublicOne(bin.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	err = p.Check(time.Now())
	if !errors.Is(err, keys.ErrRevoked) || !strings.Contains(err.Error(), `key compromised: "laptop stolen"`) {
		t.Errorf("Check = %v, want ErrRevoked with the reason", err)
	}
	// Armored keeps the revocation.
	a, _ := p.Armored()
	p2, err := keys.ParsePublicOne(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := p2.Check(time.Now()); !errors.Is(err, keys.ErrRevoked) {
		t.Errorf("after Armored round trip: %v, want ErrRevoked", err)
	}
}

func TestParsePublicErrors(t *testing.T) {
	s := keystest.NewSecret(t, "A", "a@b.pt")
	path := filepath.Join(t.TempDir(), "k")
	if err := s.WriteFile(path, nil); err != nil {
		t.Fatal(err)
	}
	armoredSecret, _ := os.ReadFile(path)
	var binSecret bytes.Buffer
	if err := s.Entity().SerializePrivateWithoutSigning(&binSecret, nil); err != nil {
		t.Fatal(err)
	}
	pub, _ := s.Public().Armored()
	pub2, _ := keystest.NewSecret(t, "B", "b@b.pt").Public().Armored()

	for _, c := range []struct {
		name string
		data []byte
		is   error
	}{
		{"empty", nil, keys.ErrNoKey},
		{"blank", []byte("\n\n  \n"), keys.ErrNoKey},
		{"text", []byte("not a key\n"), keys.ErrNoKey},
		{"garbage binary", []byte{0x99, 0x01, 0x02, 0x03}, keys.ErrNoKey},
		{"armored secret", armoredSecret, keys.ErrSecretKey},
		{"binary secret", binSecret.Bytes(), keys.ErrSecretKey},
		{"public then secret", append(bytes.Clone(pub), armoredSecret...), keys.ErrSecretKey},
		{"signature block", []byte("-----BEGIN PGP SIGNATURE-----\n\nwsBcBAABCAAQBQJ\n-----END PGP SIGNATURE-----\n"), nil},
		{"defused block", []byte("text\n:" + string(pub)), keys.ErrNoKey},
		{"truncated armor", pub[:len(pub)/2], nil},
	} {
		if ps, err := keys.ParsePublic(c.data); err == nil || (c.is != nil && !errors.Is(err, c.is)) {
			t.Errorf("%s: %d keys, %v; want %v", c.name, len(ps), err, c.is)
		}
	}
	if _, err := keys.ParsePublicOne(append(bytes.Clone(pub), pub2...)); err == nil || !strings.Contains(err.Error(), "expected one key, found 2") {
		t.Errorf("ParsePublicOne of two keys: %v", err)
	}
	big := append(bytes.Clone(pub), bytes.Repeat([]byte("x"), keys.MaxKeyBytes)...)
	if _, err := keys.ParsePublicOne(big); !errors.Is(err, keys.ErrTooLarge) {
		t.Errorf("ParsePublicOne over MaxKeyBytes: %v", err)
	}
	if ps, err := keys.ParsePublic(big); err != nil || len(ps) != 1 {
		t.Errorf("ParsePublic of a key and 1 MiB of trailing text: %d keys, %v", len(ps), err)
	}
}

func TestParsePublicBundle(t *testing.T) {
	var armored, binary bytes.Buffer
	var want []string
	for i, name := range []string{"a", "b", "c"} {
		s := keystest.NewSecret(t, strings.ToUpper(name), name+"@b.pt")
		want = append(want, s.Fingerprint())
		a, err := s.Public().Armored()
		if err != nil {
			t.Fatal(err)
		}
		armored.WriteString("comment before key " + strconv.Itoa(i) + "\n")
		armored.Write(a)
		if err := s.Public().Entity().Serialize(&binary); err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range map[string][]byte{"armored": armored.Bytes(), "binary": binary.Bytes()} {
		ps, err := keys.ParsePublic(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var got []string
		for _, p := range ps {
			got = append(got, p.Fingerprint)
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
}

func TestHasEmail(t *testing.T) {
	p := keystest.NewSecret(t, "Ana", "Ana.Silva@DNS.PT").Public()
	for email, want := range map[string]bool{
		"ana.silva@dns.pt": true, "ANA.SILVA@dns.pt": true, " ana.silva@dns.pt ": true,
		"ana@dns.pt": false, "": false, "Ana <ana.silva@dns.pt>": false,
	} {
		if got := p.HasEmail(email); got != want {
			t.Errorf("HasEmail(%q) = %v, want %v", email, got, want)
		}
	}
}

func TestNewSecretDeterministic(t *testing.T) {
	a1 := keystest.NewSecret(t, "A", "a@b.pt")
	a2 := keystest.NewSecret(t, "A", "a@b.pt")
	b := keystest.NewSecret(t, "A", "a2@b.pt")
	if a1.Fingerprint() != a2.Fingerprint() {
		t.Errorf("NewSecret not deterministic: %s vs %s", a1.Fingerprint(), a2.Fingerprint())
	}
	x1, _ := a1.Public().Armored()
	x2, _ := a2.Public().Armored()
	if !bytes.Equal(x1, x2) {
		t.Error("NewSecret keys armor differently")
	}
	if a1.Fingerprint() == b.Fingerprint() {
		t.Error("different emails gave the same key")
	}
}

// TestImportsNothingFromProject: keys sits at the bottom of the layering.
func TestImportsNothingFromProject(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files: %v", err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); strings.HasPrefix(path, "github.com/ccdir/ccdir") {
				t.Errorf("%s imports %s", f, path)
			}
		}
	}
}

// TestConcurrentUse: go-crypto caches signature validity in the entity, so
// Check, Verify, Armored and Sign lock. Run with -race.
func TestConcurrentUse(t *testing.T) {
	s := keystest.NewSecret(t, "A", "a@b.pt")
	data := []byte("x")
	sig, err := s.Sign(data)
	if err != nil {
		t.Fatal(err)
	}
	p := s.Public()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- p.Check(time.Now())
			_, err := p.Verify(data, sig)
			errs <- err
			_, err = p.Armored()
			errs <- err
			_, err = s.Sign(data)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestGroupFingerprint(t *testing.T) {
	for in, want := range map[string]string{
		"":             "",
		"ABC":          "ABC",
		"ABCD":         "ABCD",
		"ABCD1":        "ABCD 1",
		"ABCD1234EF56": "ABCD 1234 EF56",
		"abcd 1234ef":  "ABCD 1234 EF",
	} {
		if got := keys.GroupFingerprint(in); got != want {
			t.Errorf("GroupFingerprint(%q) = %q, want %q", in, got, want)
		}
	}
}

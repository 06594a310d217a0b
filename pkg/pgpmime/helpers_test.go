package pgpmime_test

import (
	"bytes"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testNow is the fixed clock of the deterministic tests.
var testNow = time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)

// The people of the tests, one per script.
var (
	conceicao = mail.Address{Name: "Conceição Ferreira", Address: "conceicao@dns.pt"}
	fatima    = mail.Address{Name: "فاطمة العتيبي", Address: "fatima@nic.sa"}
	wangWei   = mail.Address{Name: "王伟", Address: "wang.wei@cnnic.cn"}
	ivan      = mail.Address{Name: "Иван Петров", Address: "ivan.petrov@cctld.ru"}
	dirAddr   = mail.Address{Name: "Diretório ccTLD (Zürich, \"teste\")", Address: "directory@cctld-dir.example"}
)

const testSubject = "Diretório ccTLD nº 42 — Conceição, فاطمة العتيبي, 王伟, Иван Петров: what changed since serial 41"

// dirKey returns the deterministic directory key with its clock at testNow.
func dirKey(t testing.TB) *keys.Secret {
	t.Helper()
	s := keystest.NewSecret(t, "ccTLD Directory", "directory@cctld-dir.example")
	s.SetClock(func() time.Time { return testNow })
	return s
}

// rcptKey returns a deterministic Ed25519 key for a recipient.
func rcptKey(t testing.TB, name, email string) *keys.Secret {
	t.Helper()
	return keystest.NewSecret(t, name, email)
}

func testProtected() pgpmime.Protected {
	return pgpmime.Protected{
		From:      dirAddr,
		ToGroup:   "ccTLD security contacts — Conceição",
		Subject:   testSubject,
		Date:      testNow,
		MessageID: "digest-42.20260301T093000Z@cctld-dir.example",
	}
}

func testText() string {
	return "ccTLD security contact directory, serial 42\n" +
		"\n" +
		".pt  DNS.PT            Conceição Ferreira   +351 211 000 000\n" +
		".sa  SaudiNIC          فاطمة العتيبي        +966 11 000 0000\n" +
		".cn  CNNIC             王伟                 +86 10 0000 0000\n" +
		".ru  Coordination Ctr  Иван Петров          +7 495 000 00 00\n" +
		"Lines that start with \"From \" would make this base64.\n" +
		"Trailing spaces here   \n" +
		"=?utf-8?q?not-a-header?= and a long line " + strings.Repeat("0123456789", 12) + "\n"
}

func testParts() []pgpmime.Part {
	return []pgpmime.Part{
		{Body: []byte(testText())},
		{ContentType: "text/vcard", Filename: "directory.vcf",
			Body: []byte("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Conceição Ferreira\r\nEMAIL:conceicao@dns.pt\r\nEND:VCARD\r\n")},
		{ContentType: "application/json", Filename: "directory.json",
			Body: []byte(`{"serial":42,"contacts":[{"name":"王伟"},{"name":"Иван Петров"}]}` + "\n")},
		{ContentType: "application/pgp-keys", Filename: "directory-keys.asc",
			Body: []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxjMEZ...\n-----END PGP PUBLIC KEY BLOCK-----\n")},
		{ContentType: "application/octet-stream", Filename: "relatório de mudanças – Conceição.bin",
			Body: []byte{0, 1, 2, 0xff, 0xfe, '\r', '\n', 'F', 'r', 'o', 'm', ' '}},
	}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -update rewrites it)\n--- got:\n%s", path, got)
	}
}

// splitSigned cuts a multipart/signed entity into the signed part and the
// signature part's body, by plain byte search (independent of pgpmime).
func splitSigned(t testing.TB, entity []byte) (signed, sig []byte) {
	t.Helper()
	i := bytes.Index(entity, []byte("boundary="))
	if i < 0 {
		t.Fatalf("no boundary in\n%.500s", entity)
	}
	b := entity[i+len("boundary="):]
	b = b[:bytes.IndexAny(b, ";\r\n")]
	b = bytes.Trim(b, `"`)
	delim := append([]byte("\r\n--"), b...)
	start := bytes.Index(entity, append(delim[2:], '\r', '\n'))
	if start < 0 {
		t.Fatal("no first delimiter")
	}
	rest := entity[start+len(delim):]
	end := bytes.Index(rest, delim)
	if end < 0 {
		t.Fatal("no second delimiter")
	}
	signed = rest[:end]
	part2 := rest[end+len(delim)+2:]
	end2 := bytes.Index(part2, append(delim, '-', '-'))
	if end2 < 0 {
		t.Fatal("no closing delimiter")
	}
	part2 = part2[:end2]
	h := bytes.Index(part2, []byte("\r\n\r\n"))
	if h < 0 {
		t.Fatal("signature part has no header")
	}
	return signed, part2[h+4:]
}

// chachaRand is a deterministic randomness source for tests.
func chachaRand(seed byte) *rand.ChaCha8 {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

// testEncrypter signs the test entity (testProtected, testParts) with dir
// and prepares its encryption at testNow.
func testEncrypter(t testing.TB, dir *keys.Secret) (*pgpmime.Signed, *pgpmime.Encrypter) {
	t.Helper()
	inner, err := pgpmime.BuildInner(testProtected(), testParts())
	if err != nil {
		t.Fatal(err)
	}
	signed, err := pgpmime.Sign(inner, dir)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := pgpmime.NewEncrypter(signed, testNow)
	if err != nil {
		t.Fatal(err)
	}
	return signed, enc
}

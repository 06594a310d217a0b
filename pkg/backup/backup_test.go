package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/keys"
)

var now = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)

func sample(t *testing.T) (Manifest, []Source) {
	db := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(db, bytes.Repeat([]byte("sqlite"), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	return Manifest{Created: now.Format(time.RFC3339), Directory: "T", KeyFingerprint: "ABCD", Serial: 7, Head: "ff"},
		[]Source{{Name: DatabaseName, Mode: 0o600, Path: db},
			{Name: ConfigName, Mode: 0o600, Data: []byte("operator:\n  key: X\n")},
			{Name: "keys/directory.pub.asc", Mode: 0o644, Data: []byte("pub")},
			{Name: "keys/outbox.key", Mode: 0o600, Data: []byte("00ff")}}
}

func extract(t *testing.T, r []byte, sec *keys.Secret) (*Manifest, string, error) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(bytes.NewReader(r), sec)
	if err != nil {
		return nil, dir, err
	}
	m, err := Extract(s, dir)
	return m, dir, err
}

func TestRoundTrip(t *testing.T) {
	m, files := sample(t)
	var buf bytes.Buffer
	if err := Write(&buf, m, files); err != nil {
		t.Fatal(err)
	}
	got, dir, err := extract(t, buf.Bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Serial != 7 || got.Head != "ff" || len(got.Files) != 4 {
		t.Fatalf("manifest %+v", got)
	}
	for _, f := range files {
		st, err := os.Stat(filepath.Join(dir, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != f.Mode {
			t.Errorf("%s: mode %04o, want %04o", f.Name, st.Mode().Perm(), f.Mode)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "keys/outbox.key"))
	if string(b) != "00ff" {
		t.Errorf("outbox.key %q", b)
	}
	if st, _ := os.Stat(filepath.Join(dir, KeysDir)); st.Mode().Perm() != 0o700 {
		t.Errorf("keys/ mode %04o", st.Mode().Perm())
	}
}

func TestEncrypted(t *testing.T) {
	op, err := keys.Generate("Operator", "ops@example.org", keys.AlgoEd25519, now.Add(-time.Hour), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := keys.Generate("Other", "other@example.org", keys.AlgoEd25519, now.Add(-time.Hour), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	m, files := sample(t)
	var buf bytes.Buffer
	w, err := Encrypt(&buf, op.Public(), now)
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(w, m, files); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(buf.Bytes(), []byte("operator:")) {
		t.Fatal("plaintext in the encrypted backup")
	}
	if _, _, err := extract(t, buf.Bytes(), nil); !errors.Is(err, ErrEncrypted) {
		t.Fatalf("without a key: %v", err)
	}
	if _, _, err := extract(t, buf.Bytes(), other); err == nil {
		t.Fatal("decrypted with another key")
	}
	if _, _, err := extract(t, buf.Bytes(), op); err != nil {
		t.Fatal(err)
	}
	// A flipped byte near the end: the MDC (or gzip) catches it.
	bad := bytes.Clone(buf.Bytes())
	bad[len(bad)-30] ^= 1
	if _, _, err := extract(t, bad, op); err == nil {
		t.Fatal("a damaged backup extracted")
	}
}

func TestDamaged(t *testing.T) {
	m, files := sample(t)
	var buf bytes.Buffer
	if err := Write(&buf, m, files); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{buf.Len() / 2, buf.Len() - 5} {
		if _, _, err := extract(t, buf.Bytes()[:n], nil); err == nil {
			t.Errorf("truncated at %d of %d: extracted", n, buf.Len())
		}
	}
	if _, _, err := extract(t, []byte("hello"), nil); !errors.Is(err, ErrNotBackup) {
		t.Errorf("not a backup: %v", err)
	}
}

// TestHostileNames: a manifest naming a path outside the home, or a
// member it does not name, is refused before anything is written there.
func TestHostileNames(t *testing.T) {
	for _, name := range []string{"../evil", "keys/../../evil", "/etc/passwd", "keys/.hidden", "keys/sub/x", "other.txt"} {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		tw := tar.NewWriter(gz)
		mj, _ := json.Marshal(Manifest{Format: Format, Version: Version, KeysOnly: true, Files: []File{{Name: name, Mode: 0o600, Size: 1, SHA256: strings.Repeat("0", 64)}}})
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: ManifestName, Mode: 0o600, Size: int64(len(mj))})
		tw.Write(mj)
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o600, Size: 1})
		tw.Write([]byte("x"))
		tw.Close()
		gz.Close()
		_, dir, err := extract(t, buf.Bytes(), nil)
		if err == nil || !strings.Contains(err.Error(), "not a file of a home") {
			t.Errorf("%s: %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "..", "evil")); err == nil {
			t.Errorf("%s: written outside", name)
		}
	}
	if err := Write(&bytes.Buffer{}, Manifest{}, []Source{{Name: "../x", Mode: 0o600}}); err == nil {
		t.Error("Write took a bad name")
	}
}

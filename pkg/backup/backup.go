// Package backup writes and reads a ccdir backup: one file holding a
// home folder's database, its key files and its configuration as they
// stood together (ccdir backup, ccdir restore).
//
// A backup is a gzip-compressed tar stream whose first member is the
// manifest (ManifestName, JSON: [Manifest]) naming every other member
// with its size, mode and SHA-256, in the order they follow:
//
//	ccdir-backup.json
//	directory.db          (absent in a keys-only backup)
//	config.yaml           (when the home has one)
//	keys/directory.sec.asc, keys/directory.pub.asc, keys/outbox.key, …
//
// That stream is written as it is (the caller makes the file 0600), or
// encrypted to one OpenPGP key (the operator's: [Encrypt]) as a binary
// OpenPGP message that gpg -d decrypts back to the tar.gz. [Open] takes
// either form (and an armored message), [Extract] unpacks it into a new
// folder, checking every member against the manifest.
package backup

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"time"

	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/ccdir/ccdir/keys"
)

// The manifest identifies a backup with these values.
const (
	Format       = "ccdir-backup"
	Version      = 1
	ManifestName = "ccdir-backup.json"
)

// Names inside a backup.
const (
	DatabaseName = "directory.db"
	ConfigName   = "config.yaml"
	KeysDir      = "keys"
)

// Limits of [Extract].
const (
	MaxManifest = 1 << 20  // bytes of the manifest
	MaxFiles    = 10_000   // members after it
	MaxKeyFile  = 16 << 20 // bytes of any member but the database
	MaxTotal    = 16 << 30 // bytes of all members
)

// Manifest describes a backup. Readers refuse another Format and a
// Version they do not know.
type Manifest struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	Created string `json:"created"` // RFC 3339
	// Directory is the directory's name, KeyFingerprint its key's
	// fingerprint, Serial and Head its ledger head, all as the
	// database said when the backup was taken, under its write lock.
	Directory      string `json:"directory"`
	KeyFingerprint string `json:"key_fingerprint"`
	Serial         int64  `json:"serial"`
	Head           string `json:"head"`
	// KeysOnly: no directory.db (ccdir backup --keys-only, for a home
	// whose database is replicated apart, by Litestream).
	KeysOnly bool   `json:"keys_only"`
	Files    []File `json:"files"`
}

// File is one member of a backup, in the manifest: its name, its
// permissions (0600 or 0644), its size and its SHA-256 in hex.
type File struct {
	Name   string `json:"name"`
	Mode   uint32 `json:"mode"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Source is a file to put into a backup: its data in memory, or the file
// at Path (the database copy, which may be large).
type Source struct {
	Name string
	Mode os.FileMode
	Data []byte
	Path string
}

// validName is a member name a backup may hold: the database, the
// configuration, or a file directly in keys/ whose name does not start
// with a dot.
var validName = regexp.MustCompile(`^(directory\.db|config\.yaml|keys/[A-Za-z0-9_-][A-Za-z0-9._-]{0,127})$`)

// Write writes m and files as a backup's tar.gz stream to w: m.Files is
// filled in from files (sizes and SHA-256 of what is written, each file
// read twice: once for its hash, once into the stream).
func Write(w io.Writer, m Manifest, files []Source) error {
	m.Format, m.Version = Format, Version
	m.Files = nil
	for _, f := range files {
		if !validName.MatchString(f.Name) {
			return fmt.Errorf("backup: bad member name %q", f.Name)
		}
		perm := f.Mode.Perm()
		if perm != 0o600 && perm != 0o644 {
			return fmt.Errorf("backup: %s has mode %04o, want 0600 or 0644", f.Name, perm)
		}
		r, closeFn, err := f.open()
		if err != nil {
			return err
		}
		h := sha256.New()
		n, err := io.Copy(h, r)
		closeFn()
		if err != nil {
			return fmt.Errorf("backup: read %s: %w", f.Name, err)
		}
		m.Files = append(m.Files, File{Name: f.Name, Mode: uint32(perm), Size: n, SHA256: hex.EncodeToString(h.Sum(nil))})
	}
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	mj = append(mj, '\n')
	created, _ := time.Parse(time.RFC3339, m.Created)
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	hdr := func(name string, mode uint32, size int64) *tar.Header {
		return &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: int64(mode), Size: size, ModTime: created, Format: tar.FormatPAX}
	}
	if err := tw.WriteHeader(hdr(ManifestName, 0o600, int64(len(mj)))); err != nil {
		return err
	}
	if _, err := tw.Write(mj); err != nil {
		return err
	}
	for i, f := range files {
		mf := m.Files[i]
		if err := tw.WriteHeader(hdr(mf.Name, mf.Mode, mf.Size)); err != nil {
			return err
		}
		r, closeFn, err := f.open()
		if err != nil {
			return err
		}
		// The file must not have changed since it was hashed.
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(tw, h), io.LimitReader(r, mf.Size+1))
		closeFn()
		if err != nil {
			return fmt.Errorf("backup: write %s: %w", f.Name, err)
		}
		if n != mf.Size || hex.EncodeToString(h.Sum(nil)) != mf.SHA256 {
			return fmt.Errorf("backup: %s changed while it was written", f.Name)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func (f Source) open() (io.Reader, func(), error) {
	if f.Path == "" {
		return bytes.NewReader(f.Data), func() {}, nil
	}
	fh, err := os.Open(f.Path)
	if err != nil {
		return nil, nil, fmt.Errorf("backup: %w", err)
	}
	return fh, func() { fh.Close() }, nil
}

// Encrypt returns a writer whose input is encrypted to rcpt as a binary
// OpenPGP message written to w (AES-256, SEIPDv1 unless rcpt announces
// SEIPDv2, no compression: the stream is gzip already; not signed), as
// of now. Close it to finish the message.
func Encrypt(w io.Writer, rcpt *keys.Public, now time.Time) (io.WriteCloser, error) {
	cfg := &packet.Config{DefaultCipher: packet.CipherAES256, MinRSABits: keys.MinRSABits, Time: func() time.Time { return now }}
	if _, err := rcpt.Entity().EncryptionKeyWithError(now, cfg); err != nil {
		return nil, fmt.Errorf("%w: key %s: %v", keys.ErrNoEncryptionKey, rcpt.Fingerprint, err)
	}
	return openpgp.EncryptWithParams(w, []*openpgp.Entity{rcpt.Entity()}, nil, &openpgp.EncryptParams{
		Hints:          &openpgp.FileHints{},
		EncryptionTime: &now,
		Config:         cfg,
	})
}

// ErrEncrypted is an encrypted backup given to [Open] without a key.
var ErrEncrypted = errors.New("the backup is encrypted")

// ErrNotBackup is input that is neither a backup nor an OpenPGP message.
var ErrNotBackup = errors.New("not a ccdir backup")

// Open returns the tar.gz stream of a backup read from r: r itself when
// it is one (gzip), or decrypted with sec when it is an OpenPGP message,
// binary or armored. An encrypted backup with sec nil is ErrEncrypted.
// The stream must be read to its end (Extract does): only there is the
// message's integrity (its MDC) checked.
func Open(r io.Reader, sec *keys.Secret) (io.Reader, error) {
	br := bufio.NewReader(r)
	head, _ := br.Peek(32)
	switch {
	case len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		return br, nil
	case bytes.HasPrefix(head, []byte("-----BEGIN PGP MESSAGE-----")):
		if sec == nil {
			return nil, ErrEncrypted
		}
		b, err := armor.Decode(br)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNotBackup, err)
		}
		return decrypt(b.Body, sec)
	case len(head) > 0 && head[0]&0x80 != 0:
		if sec == nil {
			return nil, ErrEncrypted
		}
		return decrypt(br, sec)
	}
	return nil, ErrNotBackup
}

func decrypt(r io.Reader, sec *keys.Secret) (io.Reader, error) {
	md, err := openpgp.ReadMessage(r, openpgp.EntityList{sec.Entity()}, nil, &packet.Config{MinRSABits: keys.MinRSABits})
	if err != nil {
		return nil, fmt.Errorf("decrypt with key %s: %w", sec.Fingerprint(), err)
	}
	if !md.IsEncrypted {
		return nil, fmt.Errorf("%w: an OpenPGP message that is not encrypted", ErrNotBackup)
	}
	return md.UnverifiedBody, nil
}

// Extract unpacks the backup stream r (from [Open]) into dir, which must
// exist and be empty: keys/ is made 0700, every file with the mode the
// manifest gives it (0600 or 0644). Every member must be the next one
// the manifest names, with its size and SHA-256, and every one it names
// must come; r is then read to its end. On an error the caller removes
// dir: what was written may be partial.
func Extract(r io.Reader, dir string) (*Manifest, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotBackup, err)
	}
	tr := tar.NewReader(gz)
	h, err := tr.Next()
	if err != nil || h.Name != ManifestName || h.Typeflag != tar.TypeReg || h.Size > MaxManifest {
		return nil, fmt.Errorf("%w: it does not start with %s", ErrNotBackup, ManifestName)
	}
	var m Manifest
	dec := json.NewDecoder(io.LimitReader(tr, MaxManifest))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNotBackup, ManifestName, err)
	}
	if m.Format != Format {
		return nil, fmt.Errorf("%w: format %q", ErrNotBackup, m.Format)
	}
	if m.Version != Version {
		return nil, fmt.Errorf("backup version %d: this ccdir reads version %d only", m.Version, Version)
	}
	if len(m.Files) > MaxFiles {
		return nil, fmt.Errorf("backup: %d files, more than %d", len(m.Files), MaxFiles)
	}
	var total int64
	seen := map[string]bool{}
	for _, f := range m.Files {
		switch {
		case !validName.MatchString(f.Name):
			return nil, fmt.Errorf("backup: the manifest names %q, not a file of a home", f.Name)
		case seen[f.Name]:
			return nil, fmt.Errorf("backup: the manifest names %s twice", f.Name)
		case f.Mode != 0o600 && f.Mode != 0o644:
			return nil, fmt.Errorf("backup: %s has mode %04o, want 0600 or 0644", f.Name, f.Mode)
		case f.Size < 0 || f.Name != DatabaseName && f.Size > MaxKeyFile:
			return nil, fmt.Errorf("backup: %s has size %d", f.Name, f.Size)
		case f.Name == DatabaseName && m.KeysOnly:
			return nil, fmt.Errorf("backup: a keys-only backup with %s", DatabaseName)
		}
		seen[f.Name] = true
		total += f.Size
	}
	if total > MaxTotal {
		return nil, fmt.Errorf("backup: %d bytes, more than %d", total, int64(MaxTotal))
	}
	if !m.KeysOnly && !seen[DatabaseName] {
		return nil, fmt.Errorf("backup: no %s", DatabaseName)
	}
	if err := os.Mkdir(filepath.Join(dir, KeysDir), 0o700); err != nil {
		return nil, err
	}
	for _, f := range m.Files {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("backup: truncated: %s is missing", f.Name)
		}
		if err != nil {
			return nil, fmt.Errorf("backup: damaged before %s: %w", f.Name, err)
		}
		if h.Name != f.Name || h.Typeflag != tar.TypeReg || h.Size != f.Size {
			return nil, fmt.Errorf("backup: member %q where the manifest has %s", h.Name, f.Name)
		}
		if err := extractOne(tr, filepath.Join(dir, filepath.FromSlash(f.Name)), f); err != nil {
			return nil, err
		}
	}
	if h, err := tr.Next(); err != io.EOF {
		if err == nil {
			return nil, fmt.Errorf("backup: member %q the manifest does not name", h.Name)
		}
		return nil, fmt.Errorf("backup: damaged at its end: %w", err)
	}
	// To the end: gzip's checksum, and a decrypted message's MDC.
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return nil, fmt.Errorf("backup: damaged at its end: %w", err)
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return nil, fmt.Errorf("backup: damaged at its end: %w", err)
	}
	return &m, nil
}

func extractOne(r io.Reader, path string, f File) error {
	out, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, os.FileMode(f.Mode))
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), io.LimitReader(r, f.Size))
	if err == nil && n != f.Size {
		err = fmt.Errorf("backup: truncated in %s", f.Name)
	}
	if err == nil && hex.EncodeToString(h.Sum(nil)) != f.SHA256 {
		err = fmt.Errorf("backup: %s does not match its SHA-256 in the manifest", f.Name)
	}
	if err == nil {
		err = out.Chmod(os.FileMode(f.Mode)) // whatever the umask
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

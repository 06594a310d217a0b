package keys

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/ProtonMail/go-crypto/openpgp/s2k"
)

// Algo is a public key algorithm for the directory key.
type Algo string

// Algorithms for the directory key.
const (
	AlgoEd25519 Algo = "ed25519" // Ed25519 primary + Cv25519 ECDH subkey (default)
	AlgoRSA3072 Algo = "rsa3072" // RSA-3072 primary + RSA-3072 subkey
	AlgoRSA4096 Algo = "rsa4096" // RSA-4096 primary + RSA-4096 subkey (slow to make)
)

// ParseAlgo parses an algorithm name; "" means AlgoEd25519.
func ParseAlgo(s string) (Algo, error) {
	switch a := Algo(strings.ToLower(strings.TrimSpace(s))); a {
	case "", "default":
		return AlgoEd25519, nil
	case AlgoEd25519, AlgoRSA3072, AlgoRSA4096:
		return a, nil
	}
	return "", fmt.Errorf("unknown key algorithm %q (want %s, %s or %s)", s, AlgoEd25519, AlgoRSA3072, AlgoRSA4096)
}

// SignatureHash is the hash used by Sign and ArmoredDetachSign, for every
// key algorithm (so PGP/MIME can announce micalg=pgp-sha256).
const SignatureHash = crypto.SHA256

// KeyBackdate is how far Generate dates a new key (and its self-signatures)
// before now, so that a verifier whose clock runs a little behind does not
// see a self-signature from the future ("no valid self signature").
const KeyBackdate = time.Minute

// Secret is the directory's own key: an OpenPGP entity with its private keys
// decrypted. Sign and ArmoredDetachSign may be called concurrently (they
// serialise on a lock, because go-crypto caches signature validity inside the
// entity); code that signs with Entity() directly must not run concurrently
// with them.
type Secret struct {
	entity *openpgp.Entity
	pub    *Public
	now    func() time.Time
	mu     sync.Mutex

	vmu      sync.Mutex
	verifier *Verifier // for Verify, made at first use
}

func newSecret(e *openpgp.Entity) (*Secret, error) {
	var bin bytes.Buffer
	if err := serializeOrdered(&bin, e); err != nil {
		return nil, err
	}
	pub, err := ParsePublicOne(bin.Bytes())
	if err != nil {
		return nil, fmt.Errorf("public part of secret key: %w", err)
	}
	return &Secret{entity: e, pub: pub, now: time.Now}, nil
}

// Generate makes a v4 key with one user ID, "name <email>", and no
// expiry: GenerateKey with one address.
func Generate(name, email string, algo Algo, now time.Time, rand io.Reader) (*Secret, error) {
	return GenerateKey(KeySpec{Name: name, Emails: []string{email}, Algo: algo, Now: now, Rand: rand})
}

// SetClock sets the clock that dates signatures (default time.Now). Call it
// before sharing s between goroutines.
func (s *Secret) SetClock(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	s.now = now
}

// Fingerprint returns the primary key fingerprint, 40 uppercase hex digits.
func (s *Secret) Fingerprint() string { return s.pub.Fingerprint }

// Public returns the public part of the key. The same *Public is returned
// on every call.
func (s *Secret) Public() *Public { return s.pub }

// Entity returns the unlocked go-crypto entity, private keys included.
// Callers must not modify it.
func (s *Secret) Entity() *openpgp.Entity { return s.entity }

// SignConfig returns the go-crypto configuration Sign uses: SignatureHash and
// the clock set with SetClock. Packages that sign through go-crypto directly
// (PGP/MIME) should use it too.
func (s *Secret) SignConfig() *packet.Config {
	return &packet.Config{
		DefaultHash: SignatureHash,
		Time:        s.now,
	}
}

// Sign returns a binary detached signature (type 0x00, OpenPGP packet bytes)
// over data, with SignatureHash, dated by the clock set with SetClock.
func (s *Secret) Sign(data []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	resetValidity(s.entity)
	var out bytes.Buffer
	if err := openpgp.DetachSign(&out, []*openpgp.Entity{s.entity}, bytes.NewReader(data), s.SignConfig()); err != nil {
		return nil, fmt.Errorf("sign with key %s: %w", s.Fingerprint(), err)
	}
	return out.Bytes(), nil
}

// Verify checks a binary detached signature over data made by this key
// (Verifier.Verify, with a Verifier validated at the first call by the
// clock set with SetClock): a signer can check what it signed before, as
// the ledger does before it extends it (directory.Signer).
func (s *Secret) Verify(data, sig []byte) error {
	s.vmu.Lock()
	v := s.verifier
	if v == nil {
		var err error
		if v, err = s.pub.NewVerifier(s.now()); err != nil {
			s.vmu.Unlock()
			return err
		}
		s.verifier = v
	}
	s.vmu.Unlock()
	return v.Verify(data, sig)
}

// ArmoredDetachSign writes an armored detached binary signature (type 0x00)
// over everything read from r to w: the file.asc that `gpg --verify file.asc
// file` accepts.
//
// The armor carries a CRC-24 line although RFC 9580 says it should not:
// GnuPG 2.2 misreads armor without one when the base64 text has no '='
// padding ("invalid radix64 character 2D skipped", exit 2), which
// go-crypto's own ArmoredDetachSign produces for one signature in three.
func (s *Secret) ArmoredDetachSign(w io.Writer, r io.Reader) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	resetValidity(s.entity)
	aw, err := armor.Encode(w, openpgp.SignatureType, nil)
	if err != nil {
		return err
	}
	if err := openpgp.DetachSign(aw, []*openpgp.Entity{s.entity}, r, s.SignConfig()); err != nil {
		return fmt.Errorf("sign with key %s: %w", s.Fingerprint(), err)
	}
	if err := aw.Close(); err != nil {
		return err
	}
	// armor ends without a newline after the END line.
	_, err = io.WriteString(w, "\n")
	return err
}

// privateKeyProtection is how WriteFile encrypts private keys: iterated and
// salted SHA-256 S2K with AES-256 and a SHA-1 checksum (S2K usage 254),
// which GnuPG 2.2 reads. Argon2 and AEAD protection are left out for that
// reason.
func privateKeyProtection() *packet.Config {
	return &packet.Config{
		DefaultCipher: packet.CipherAES256,
		S2KConfig: &s2k.Config{
			S2KMode:  s2k.IteratedSaltedS2K,
			Hash:     crypto.SHA256,
			S2KCount: 65011712,
		},
	}
}

// armoredPrivate returns the armored secret key, encrypted with passphrase
// if it is not empty. s.entity itself stays unlocked.
func (s *Secret) armoredPrivate(passphrase []byte) ([]byte, error) {
	e := s.entity
	if len(passphrase) > 0 {
		// Encrypt a copy: EncryptPrivateKeys works in place.
		var plain bytes.Buffer
		if err := e.SerializePrivateWithoutSigning(&plain, nil); err != nil {
			return nil, err
		}
		el, err := openpgp.ReadKeyRing(bytes.NewReader(plain.Bytes()))
		clear(plain.Bytes())
		if err != nil {
			return nil, err
		}
		if len(el) != 1 {
			return nil, fmt.Errorf("copy of secret key: %d entities", len(el))
		}
		e = el[0]
		if err := e.EncryptPrivateKeys(passphrase, privateKeyProtection()); err != nil {
			return nil, fmt.Errorf("encrypt secret key: %w", err)
		}
	}
	var out bytes.Buffer
	w, err := armor.Encode(&out, openpgp.PrivateKeyType, nil)
	if err != nil {
		return nil, err
	}
	// SerializePrivate would re-sign the self-signatures, which panics on an
	// encrypted key; nothing here needs re-signing.
	if err := e.SerializePrivateWithoutSigning(w, nil); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// WriteFile writes the armored secret key to a new file at path (mode 0600;
// an existing file is never overwritten). A non-empty passphrase encrypts
// the private keys first (see privateKeyProtection). On any error the file
// is removed.
func (s *Secret) WriteFile(path string, passphrase []byte) (err error) {
	data, err := s.armoredPrivate(passphrase)
	if err != nil {
		return err
	}
	defer clear(data)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// ArmoredPrivate returns the armored secret key as WriteFile writes it,
// for a caller that replaces a key file with its own atomic write
// (ccdir key update-uids). Clear it after use.
func (s *Secret) ArmoredPrivate(passphrase []byte) ([]byte, error) {
	return s.armoredPrivate(passphrase)
}

// ReadSecretFile loads a secret key written by WriteFile (or exported with
// `gpg --export-secret-keys`, armored or binary). It refuses a file that
// group or others may access (ErrInsecurePermissions), a file larger than
// MaxKeyBytes, a file without a secret key or with several keys. An
// encrypted key needs passphrase: ErrPassphraseRequired without one,
// ErrWrongPassphrase if it does not fit.
func ReadSecretFile(path string, passphrase []byte) (*Secret, error) {
	data, err := readSecretBytes(path)
	if err != nil {
		return nil, err
	}
	defer clear(data)
	s, err := parseSecret(data, passphrase)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// SecretFileFingerprint returns the fingerprint of the key in a secret key
// file without unlocking it: what the public key beside it must match.
func SecretFileFingerprint(path string) (string, error) {
	data, err := readSecretBytes(path)
	if err != nil {
		return "", err
	}
	defer clear(data)
	bin, err := dearmor(data, true)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	el, err := openpgp.ReadKeyRing(bytes.NewReader(bin))
	if err != nil || len(el) != 1 || el[0].PrivateKey == nil {
		return "", fmt.Errorf("%s: %w: expected one secret key", path, ErrNoKey)
	}
	return fingerprint(el[0].PrimaryKey), nil
}

// OpenPrivateFile opens a file that holds a secret (the directory's
// secret key, a key's passphrase, an SMTP password) for reading. As ssh
// does with its keys, it refuses a regular file that group or others may
// read or write (ErrInsecurePermissions, naming who and with the mode and
// the chmod that fixes it); a pipe or socket (--passphrase-file
// /dev/stdin or <(cmd)) is taken whatever its mode, since what is read
// from it is gone for anyone else; anything else (a directory, a device)
// is refused. It is the one check of such files. A named pipe is opened
// without waiting for a writer: with none it reads as empty.
func OpenPrivateFile(path string) (*os.File, error) {
	// Stat before opening: opening a device or a named pipe may block.
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := privateFileOK(path, fi); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	// What was opened is what was checked (the name may have changed).
	if fi, err = f.Stat(); err == nil {
		err = privateFileOK(path, fi)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// privateFileOK is OpenPrivateFile's check of one file's type and mode.
func privateFileOK(path string, fi os.FileInfo) error {
	mode := fi.Mode()
	switch {
	case mode&(os.ModeNamedPipe|os.ModeSocket) != 0:
		return nil
	case mode.IsDir():
		return fmt.Errorf("%s is a directory, not a file", path)
	case mode&os.ModeDevice != 0:
		return fmt.Errorf("%s is a device, not a file", path)
	case !mode.IsRegular():
		return fmt.Errorf("%s: not a regular file", path)
	}
	perm := mode.Perm()
	if perm&0o077 == 0 {
		return nil
	}
	who, bits := "its group", perm>>3&0o7
	if perm&0o007 != 0 {
		who, bits = "others", perm&0o7
	}
	how := "accessible"
	switch {
	case bits&0o4 != 0:
		how = "readable"
	case bits&0o2 != 0:
		how = "writable"
	}
	return fmt.Errorf("%w: %s is %s by %s (mode %04o); fix with chmod 600 %s", ErrInsecurePermissions, path, how, who, perm, path)
}

// readSecretBytes reads a secret key file, refusing one that others may
// access or that is too large.
func readSecretBytes(path string) ([]byte, error) {
	f, err := OpenPrivateFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxKeyBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxKeyBytes {
		clear(data)
		return nil, fmt.Errorf("%s: %w: more than %d bytes", path, ErrTooLarge, MaxKeyBytes)
	}
	return data, nil
}

func parseSecret(data, passphrase []byte) (*Secret, error) {
	bin, err := dearmor(data, true)
	if err != nil {
		return nil, err
	}
	el, err := openpgp.ReadKeyRing(bytes.NewReader(bin))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoKey, err)
	}
	switch {
	case len(el) == 0:
		return nil, ErrNoKey
	case len(el) > 1:
		return nil, fmt.Errorf("file holds %d keys, expected one secret key", len(el))
	}
	e := el[0]
	if e.PrivateKey == nil {
		return nil, fmt.Errorf("key %s is a public key, not a secret key", fingerprint(e.PrimaryKey))
	}
	if e.PrivateKey.Dummy() {
		return nil, fmt.Errorf("key %s has no primary secret key (a gnu-dummy stub, as --export-secret-subkeys writes)",
			fingerprint(e.PrimaryKey))
	}
	if encrypted(e) {
		if len(passphrase) == 0 {
			return nil, fmt.Errorf("key %s: %w", fingerprint(e.PrimaryKey), ErrPassphraseRequired)
		}
		if err := e.DecryptPrivateKeys(passphrase); err != nil {
			var unsupported pgperrors.UnsupportedError
			if errors.As(err, &unsupported) {
				return nil, fmt.Errorf("key %s: %w", fingerprint(e.PrimaryKey), err)
			}
			// A wrong passphrase shows as a checksum, AEAD or key-validation
			// failure depending on the protection; all mean the same here.
			return nil, fmt.Errorf("key %s: %w", fingerprint(e.PrimaryKey), ErrWrongPassphrase)
		}
	}
	return newSecret(e)
}

func encrypted(e *openpgp.Entity) bool {
	if e.PrivateKey != nil && e.PrivateKey.Encrypted {
		return true
	}
	for _, sk := range e.Subkeys {
		if sk.PrivateKey != nil && sk.PrivateKey.Encrypted {
			return true
		}
	}
	return false
}

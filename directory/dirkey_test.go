package directory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
)

// realKeyVerifier is cmd/ccdir's ledgerKeyVerifier: exactly one public
// key, no secret material, checked as it stood at.
func realKeyVerifier(armored string, at time.Time) (string, VerifyFunc, error) {
	p, err := keys.ParsePublicOneAt([]byte(armored), at)
	if err != nil {
		return "", nil, err
	}
	v, err := p.NewVerifier(at)
	if err != nil {
		return "", nil, err
	}
	return p.Fingerprint, v.Verify, nil
}

// realKeyHome is a directory whose key is a real OpenPGP key.
type realKeyHome struct {
	t     *testing.T
	ctx   context.Context
	path  string
	sec   *keys.Secret
	clock time.Time
}

func (h *realKeyHome) opts(sec *keys.Secret, checked bool) Options {
	o := Options{Signer: sec, Now: func() time.Time { h.clock = h.clock.Add(time.Minute); return h.clock }, SplitSignatures: keys.SplitSignatures}
	if checked {
		o.KeyVerifier, o.Fingerprints = realKeyVerifier, keys.Fingerprints
	}
	return o
}

func armoredPublic(t *testing.T, s *keys.Secret) string {
	t.Helper()
	b, err := s.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// newRealKeyHome makes a directory whose genesis gives pub as its key
// (unchecked: what a bug or an edited ccdir could write).
func newRealKeyHome(t *testing.T, pub string) *realKeyHome {
	t.Helper()
	h := &realKeyHome{t: t, ctx: context.Background(), path: filepath.Join(t.TempDir(), "directory.db"),
		sec: keystest.NewSecret(t, "Test directory", "ccdir@example.org"), clock: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)}
	if pub == "" {
		pub = armoredPublic(t, h.sec)
	}
	s, err := Create(h.ctx, h.path, Info{Name: "Test directory", Address: "ccdir@example.org", KeyFingerprint: h.sec.Fingerprint(), PublicKey: pub}, h.opts(h.sec, false))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	return h
}

// write runs fn in a transaction of a store opened without the key
// checks (Options.KeyVerifier, Options.Fingerprints), signed by sec.
func (h *realKeyHome) write(sec *keys.Secret, fn func(*Tx) error) {
	h.t.Helper()
	s, err := Open(h.ctx, h.path, h.opts(sec, false))
	if err != nil {
		h.t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Update(h.ctx, Operator, fn); err != nil {
		h.t.Fatal(err)
	}
}

// check runs Verify and Checked (what digests and HELP read) as ccdir
// does, trusting sec; both must fail at entry seq naming want, or
// succeed when want is "".
func (h *realKeyHome) check(sec *keys.Secret, seq int64, want string) {
	h.t.Helper()
	s, err := Open(h.ctx, h.path, Options{ReadOnly: true, KeyVerifier: realKeyVerifier, Fingerprints: keys.Fingerprints, SplitSignatures: keys.SplitSignatures,
		Now: func() time.Time { return h.clock }})
	if err != nil {
		h.t.Fatal(err)
	}
	defer s.Close()
	_, verr := s.Verify(h.ctx, sec.Fingerprint(), sec.Verify)
	_, cerr := s.Checked(h.ctx, sec.Fingerprint(), sec.Verify)
	for name, err := range map[string]error{"Verify": verr, "Checked": cerr} {
		if want == "" {
			if err != nil {
				h.t.Errorf("%s: %v", name, err)
			}
			continue
		}
		// Checked wraps the VerifyError as tampering with the tables.
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("ledger entry %d: ", seq)) || !strings.Contains(err.Error(), want) {
			h.t.Errorf("%s = %v, want entry %d: %q", name, err, seq, want)
		}
	}
}

// dropSubkeys is armored without its subkeys.
func dropSubkeys(t *testing.T, armored string) string {
	t.Helper()
	el, err := openpgp.ReadArmoredKeyRing(strings.NewReader(armored))
	if err != nil || len(el) != 1 {
		t.Fatalf("read key: %v", err)
	}
	el[0].Subkeys = nil
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := el[0].Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return buf.String()
}

// A directory.key entry is replayed only when its public key is a copy
// of the directory's key: one public key, that fingerprint, its subkeys
// kept. The payload's fingerprint field alone proves nothing: the
// armored key is what HELP replies and digests attach.
func TestDirectoryKeyReplayParsesTheKey(t *testing.T) {
	dir := keystest.NewSecret(t, "Test directory", "ccdir@example.org")
	mallory := keystest.NewSecret(t, "Mallory", "ccdir@example.org")
	own := dir.Fingerprint()
	newer, _, err := dir.WithUserIDs("Test directory", []string{"ccdir@example.org", "alerts@example.org"}, time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	secret, err := dir.ArmoredPrivate(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, key, want string
	}{
		{"newer copy", armoredPublic(t, newer), ""},
		{"another key", armoredPublic(t, mallory), "is a copy of directory key " + own + ", but the public key it gives is " + mallory.Fingerprint()},
		{"two keys", armoredPublic(t, newer) + armoredPublic(t, mallory), "expected one key, found 2"},
		{"secret key", string(secret), "its public key cannot be read"},
		{"not a key", "test, with the list's user ID", "its public key cannot be read"},
		{"subkey dropped", dropSubkeys(t, armoredPublic(t, newer)), "drops its subkey"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newRealKeyHome(t, "")
			h.check(h.sec, 0, "")
			h.write(h.sec, func(tx *Tx) error {
				return tx.append(opDirectoryKey, directoryKeyPayload{Fingerprint: own, PublicKey: c.key})
			})
			h.check(h.sec, 2, c.want)
		})
	}
}

// A newer copy of the directory's key (SetDirectoryKey, with the key
// checks as ccdir opens a store to write) is a directory.key entry: Info
// carries it, Verify and Checked replay it, the same copy again changes
// nothing; another key, a non-key, another fingerprint, or a copy
// without a subkey are refused and nothing is written.
func TestSetDirectoryKey(t *testing.T) {
	h := newRealKeyHome(t, "")
	mallory := keystest.NewSecret(t, "Mallory", "ccdir@example.org")
	s, err := Open(h.ctx, h.path, h.opts(h.sec, true))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	newer, _, err := h.sec.WithUserIDs("Test directory", []string{"ccdir@example.org", "alerts@example.org"}, h.clock)
	if err != nil {
		t.Fatal(err)
	}
	copyArmored := armoredPublic(t, newer)
	var info Info
	entries, err := s.Update(h.ctx, Operator, func(tx *Tx) (err error) { info, err = tx.SetDirectoryKey(copyArmored); return err })
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Op != opDirectoryKey || entries[0].Seq != 2 {
		t.Fatalf("entries = %+v", entries)
	}
	got, err := s.Info(h.ctx)
	if err != nil || got.PublicKey != copyArmored || info.PublicKey != copyArmored || got.KeyFingerprint != h.sec.Fingerprint() {
		t.Errorf("stored Info = %+v, %v", got, err)
	}
	h.check(h.sec, 0, "")
	_, err = s.Update(h.ctx, Operator, func(tx *Tx) error { _, err := tx.SetDirectoryKey(copyArmored); return err })
	if !errors.Is(err, ErrUnchanged) {
		t.Errorf("same copy again: %v", err)
	}
	for name, k := range map[string]string{"another key": armoredPublic(t, mallory), "not a key": "test, with the list's user ID",
		"subkey dropped": dropSubkeys(t, copyArmored)} {
		if _, err := s.Update(h.ctx, Operator, func(tx *Tx) error { _, err := tx.SetDirectoryKey(k); return err }); err == nil {
			t.Errorf("SetDirectoryKey(%s) accepted", name)
		}
	}
	_, err = s.Update(h.ctx, Operator, func(tx *Tx) error {
		return tx.append(opDirectoryKey, directoryKeyPayload{Fingerprint: mallory.Fingerprint(), PublicKey: armoredPublic(t, mallory)})
	})
	if err == nil || !strings.Contains(err.Error(), "a copy of the same key only") {
		t.Errorf("another fingerprint: %v", err)
	}
	if h, err := s.Head(h.ctx); err != nil || h.Serial != 2 {
		t.Errorf("refused copies were written: head %+v, %v", h, err)
	}
}

// The genesis's public key and a rekey's new one are checked against
// the fingerprints they are named by, even when the key is the one the
// caller trusts (whose signatures the caller checks itself).
func TestNamedKeysParsed(t *testing.T) {
	mallory := keystest.NewSecret(t, "Mallory", "ccdir@example.org")
	t.Run("genesis", func(t *testing.T) {
		h := newRealKeyHome(t, armoredPublic(t, mallory))
		h.check(h.sec, 1, "genesis names directory key "+h.sec.Fingerprint()+", but the public key it gives is "+mallory.Fingerprint())
		_, err := Create(h.ctx, filepath.Join(t.TempDir(), "d.db"), Info{Name: "x", Address: "ccdir@example.org", KeyFingerprint: h.sec.Fingerprint(), PublicKey: armoredPublic(t, mallory)}, h.opts(h.sec, true))
		if err == nil || !strings.Contains(err.Error(), "public key is "+mallory.Fingerprint()) {
			t.Errorf("Create with another public key: %v", err)
		}
	})
	t.Run("rekey", func(t *testing.T) {
		h := newRealKeyHome(t, "")
		next := keystest.NewSecret(t, "Test directory 2", "ccdir@example.org")
		h.write(h.sec, func(tx *Tx) error {
			return tx.Rekey(next, RekeyPayload{OldFingerprint: h.sec.Fingerprint(), NewFingerprint: next.Fingerprint(), PublicKey: armoredPublic(t, mallory)})
		})
		h.check(next, 2, "rekey to directory key "+next.Fingerprint()+", but the public key it gives is "+mallory.Fingerprint())
	})
	t.Run("rekey ok", func(t *testing.T) {
		h := newRealKeyHome(t, "")
		next := keystest.NewSecret(t, "Test directory 2", "ccdir@example.org")
		h.write(h.sec, func(tx *Tx) error {
			return tx.Rekey(next, RekeyPayload{OldFingerprint: h.sec.Fingerprint(), NewFingerprint: next.Fingerprint(), PublicKey: armoredPublic(t, next)})
		})
		h.check(next, 0, "")
	})
}

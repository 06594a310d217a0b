package directory

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The tests' directory keys are edSigners; their "armored" public key is
// "ed25519:" and the public key in hex, which edKeyVerifier parses.
func (s *edSigner) armored() string {
	return "ed25519:" + hex.EncodeToString(s.priv.Public().(ed25519.PublicKey))
}

func edKeyVerifier(armored string, at time.Time) (string, VerifyFunc, error) {
	h, ok := strings.CutPrefix(armored, "ed25519:")
	pub, err := hex.DecodeString(h)
	if !ok || err != nil || len(pub) != ed25519.PublicKeySize {
		return "", nil, errors.New("not an ed25519 test key")
	}
	sum := sha256.Sum256(pub)
	fpr := strings.ToUpper(hex.EncodeToString(sum[:20]))
	return fpr, func(data, sig []byte) error {
		if !ed25519.Verify(pub, data, sig) {
			return errors.New("signature does not verify")
		}
		return nil
	}, nil
}

// edSplit splits concatenated Ed25519 signatures (64 bytes each).
func edSplit(sig []byte) ([][]byte, error) {
	if len(sig) == 0 || len(sig)%ed25519.SignatureSize != 0 {
		return nil, errors.New("not Ed25519 signatures")
	}
	var out [][]byte
	for len(sig) > 0 {
		out = append(out, sig[:ed25519.SignatureSize])
		sig = sig[ed25519.SignatureSize:]
	}
	return out, nil
}

type rekeyFixture struct {
	t     *testing.T
	ctx   context.Context
	path  string
	keys  []*edSigner // the chain, genesis key first
	clock time.Time
	s     *Store
}

func (f *rekeyFixture) opts(signer Signer) Options {
	return Options{Signer: signer, Now: func() time.Time { f.clock = f.clock.Add(time.Minute); return f.clock },
		KeyVerifier: edKeyVerifier, SplitSignatures: edSplit}
}

func (f *rekeyFixture) cur() *edSigner { return f.keys[len(f.keys)-1] }

// reopen opens the store again, signing with the current key.
func (f *rekeyFixture) reopen() {
	f.t.Helper()
	if f.s != nil {
		f.s.Close()
	}
	s, err := Open(f.ctx, f.path, f.opts(f.cur()))
	if err != nil {
		f.t.Fatal(err)
	}
	f.s = s
}

func (f *rekeyFixture) rekey(seed byte) Entry {
	f.t.Helper()
	next := newSigner(seed)
	entries, err := f.s.Update(f.ctx, Operator, func(tx *Tx) error {
		return tx.Rekey(next, RekeyPayload{OldFingerprint: f.cur().Fingerprint(), NewFingerprint: next.Fingerprint(), PublicKey: next.armored()})
	})
	if err != nil {
		f.t.Fatal(err)
	}
	f.keys = append(f.keys, next)
	f.reopen()
	return entries[0]
}

func (f *rekeyFixture) addMember(tld string) {
	f.t.Helper()
	if _, err := f.s.Update(f.ctx, Operator, func(tx *Tx) error {
		_, err := tx.AddMember(Member{TLD: tld, Org: "Org " + tld})
		return err
	}); err != nil {
		f.t.Fatal(err)
	}
}

// newRekeyFixture makes a directory whose key went through two rekeys:
// entries 1 (genesis, key 1), 2 (member), 3 (rekey to key 2), 4
// (member), 5 (rekey to key 3), 6 (member).
func newRekeyFixture(t *testing.T) *rekeyFixture {
	f := &rekeyFixture{t: t, ctx: context.Background(), path: filepath.Join(t.TempDir(), "directory.db"),
		keys: []*edSigner{newSigner(1)}, clock: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)}
	s, err := Create(f.ctx, f.path, Info{Name: "Test", Address: "ccdir@example.org", KeyFingerprint: f.cur().Fingerprint(), PublicKey: f.cur().armored()}, f.opts(f.cur()))
	if err != nil {
		t.Fatal(err)
	}
	f.s = s
	t.Cleanup(func() { f.s.Close() })
	f.addMember("pt")
	f.rekey(2)
	f.addMember("de")
	f.rekey(3)
	f.addMember("fr")
	return f
}

func TestRekeyChain(t *testing.T) {
	f := newRekeyFixture(t)
	cur := f.cur()
	head, err := f.s.Verify(f.ctx, cur.Fingerprint(), cur.verify)
	if err != nil || head.Serial != 6 {
		t.Fatalf("verify after two rekeys: %v %v", head, err)
	}
	// Entries are signed by the key of their time: a full replay checks each.
	if _, err := f.s.Checked(f.ctx, cur.Fingerprint(), cur.verify); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.s.CheckedAt(f.ctx, cur.Fingerprint(), cur.verify, At{Serial: 2}, At{Serial: 4}); err != nil {
		t.Fatal(err)
	}
	info, err := f.s.Info(f.ctx)
	if err != nil || info.KeyFingerprint != cur.Fingerprint() || info.PublicKey != cur.armored() {
		t.Fatalf("info after rekeys: %+v %v", info, err)
	}
	chain, err := f.s.KeyChain(f.ctx)
	if err != nil || len(chain) != 3 {
		t.Fatalf("chain: %+v %v", chain, err)
	}
	for i, k := range chain {
		if k.Fingerprint != f.keys[i].Fingerprint() {
			t.Errorf("chain[%d] is %s, want %s", i, k.Fingerprint, f.keys[i].Fingerprint())
		}
	}
	if chain[0].Since != 1 || chain[0].Until != 3 || chain[1].Since != 3 || chain[1].Until != 5 || chain[2].Since != 5 || chain[2].Until != 0 {
		t.Errorf("chain serials: %+v", chain)
	}
	// An earlier key of the chain is not the directory's key now.
	for _, k := range f.keys[:2] {
		_, err := f.s.Verify(f.ctx, k.Fingerprint(), k.verify)
		if !IsVerifyError(err) || !strings.Contains(err.Error(), "ledger entry 5: the directory's key is "+cur.Fingerprint()+" since this rekey") {
			t.Errorf("verify with earlier key %s: %v", k.Fingerprint(), err)
		}
	}
	// Without the means to read earlier keys, the chain cannot be followed.
	s2, err := Open(f.ctx, f.path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.Verify(f.ctx, cur.Fingerprint(), cur.verify); !IsVerifyError(err) || !strings.Contains(err.Error(), "genesis names directory key "+f.keys[0].Fingerprint()) {
		t.Errorf("verify without a KeyVerifier: %v", err)
	}
}

func TestRekeyRefused(t *testing.T) {
	f := newRekeyFixture(t)
	head, _ := f.s.Head(f.ctx)
	next := newSigner(9)
	for _, tc := range []struct {
		name string
		p    RekeyPayload
		want string
	}{
		{"wrong old key", RekeyPayload{OldFingerprint: f.keys[0].Fingerprint(), NewFingerprint: next.Fingerprint(), PublicKey: next.armored()}, "rekey of key"},
		{"other new key", RekeyPayload{OldFingerprint: f.cur().Fingerprint(), NewFingerprint: f.keys[0].Fingerprint(), PublicKey: next.armored()}, "the new signer is"},
		{"public key of another", RekeyPayload{OldFingerprint: f.cur().Fingerprint(), NewFingerprint: next.Fingerprint(), PublicKey: f.keys[0].armored()}, "the new public key is"},
		{"revoked without revocation", RekeyPayload{OldFingerprint: f.cur().Fingerprint(), NewFingerprint: next.Fingerprint(), PublicKey: next.armored(), Revoked: true}, "needs its revocation"},
	} {
		_, err := f.s.Update(f.ctx, Operator, func(tx *Tx) error { return tx.Rekey(next, tc.p) })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// Back to a key of the chain: refused.
	old := f.keys[0]
	_, err := f.s.Update(f.ctx, Operator, func(tx *Tx) error {
		return tx.Rekey(old, RekeyPayload{OldFingerprint: f.cur().Fingerprint(), NewFingerprint: old.Fingerprint(), PublicKey: old.armored()})
	})
	if err == nil || !strings.Contains(err.Error(), "which the directory had before") {
		t.Errorf("rekey back to the genesis key: %v", err)
	}
	if h, _ := f.s.Head(f.ctx); h != head {
		t.Errorf("head moved: %v, was %v", h, head)
	}
}

func TestRekeySignatures(t *testing.T) {
	third := newSigner(7)
	for _, tc := range []struct {
		name string
		sig  func(f *rekeyFixture, e Entry) []byte
		want string
	}{
		{"old key's only", func(f *rekeyFixture, e Entry) []byte { return e.Sig[:64] }, "ledger entry 5: bad signature: it has 1 signatures"},
		{"new key's by a third key", func(f *rekeyFixture, e Entry) []byte {
			s, _ := third.Sign(signedText(e.Seq, e.Hash))
			return append(bytes.Clone(e.Sig[:64]), s...)
		}, "ledger entry 5: bad signature: no good signature by the new key"},
		{"old key's by a third key", func(f *rekeyFixture, e Entry) []byte {
			s, _ := third.Sign(signedText(e.Seq, e.Hash))
			return append(s, e.Sig[64:]...)
		}, "ledger entry 5: bad signature: no good signature by the old key"},
		{"swapped", func(f *rekeyFixture, e Entry) []byte {
			return append(bytes.Clone(e.Sig[64:]), e.Sig[:64]...)
		}, "ledger entry 5: bad signature: no good signature by the old key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newRekeyFixture(t)
			var e Entry
			f.s.Log(f.ctx, 5, func(x *Entry) error { e = *x; return errStopTest })
			tamper(t, f.path, `UPDATE ledger SET sig = ? WHERE seq = 5`, tc.sig(f, e))
			f.reopen()
			cur := f.cur()
			_, err := f.s.Verify(f.ctx, cur.Fingerprint(), cur.verify)
			if !IsVerifyError(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("verify: %v, want %q", err, tc.want)
			}
			// The links of the chain are checked by vouch too, not only the head.
			_, err = f.s.Checked(f.ctx, cur.Fingerprint(), cur.verify)
			if !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("checked: %v, want %q", err, tc.want)
			}
		})
	}
	// An entry after a rekey signed by the old key.
	f := newRekeyFixture(t)
	var e Entry
	f.s.Log(f.ctx, 4, func(x *Entry) error { e = *x; return errStopTest })
	s, _ := f.keys[0].Sign(signedText(e.Seq, e.Hash))
	tamper(t, f.path, `UPDATE ledger SET sig = ? WHERE seq = 4`, s)
	cur := f.cur()
	if _, err := f.s.Verify(f.ctx, cur.Fingerprint(), cur.verify); !IsVerifyError(err) || !strings.Contains(err.Error(), "ledger entry 4: bad signature") {
		t.Fatalf("entry 4 signed by the retired key: %v", err)
	}
}

var errStopTest = errors.New("stop")

// A rekey inside a batch of the parallel replay, and one at a batch's
// edge: each entry is checked with the key of its time.
func TestRekeyAcrossBatches(t *testing.T) {
	f := newRekeyFixture(t) // 6 entries, keys 1, 2, 3
	bump := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if _, err := f.s.Update(f.ctx, Operator, func(tx *Tx) error {
				_, err := tx.UpdateMember("pt", func(m *Member) error { m.Org = fmt.Sprintf("Org %d", i); return nil })
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	bump(replayBatch - 7) // up to entry replayBatch-1
	f.rekey(4)            // entry replayBatch: the last of the first batch
	bump(10)
	f.rekey(5) // inside the second batch
	bump(3)
	cur := f.cur()
	head, err := f.s.Verify(f.ctx, cur.Fingerprint(), cur.verify)
	if err != nil || head.Serial != replayBatch+14 {
		t.Fatalf("verify: %v %v", head, err)
	}
	// An entry of the second batch signed by the key before its rekey.
	var e Entry
	f.s.Log(f.ctx, replayBatch+12, func(x *Entry) error { e = *x; return errStopTest })
	s, _ := f.keys[3].Sign(signedText(e.Seq, e.Hash))
	tamper(t, f.path, `UPDATE ledger SET sig = ? WHERE seq = ?`, s, e.Seq)
	_, err = f.s.Verify(f.ctx, cur.Fingerprint(), cur.verify)
	if want := fmt.Sprintf("ledger entry %d: bad signature", e.Seq); !IsVerifyError(err) || !strings.Contains(err.Error(), want) {
		t.Fatalf("verify: %v, want %q", err, want)
	}
}

// TestRekeyedSinceLoaded: a check with an earlier key of a chain that
// holds is a *RekeyedError naming both keys (what a ccdir serve started
// before the rekey sees), not a *TamperError; a key outside the chain is
// tampering as before.
func TestRekeyedSinceLoaded(t *testing.T) {
	f := newRekeyFixture(t)
	cur := f.cur()
	for _, k := range f.keys[:2] {
		_, err := f.s.Checked(f.ctx, k.Fingerprint(), k.verify)
		var rk *RekeyedError
		if !errors.As(err, &rk) || errors.Is(err, ErrTampered) || !IsVerifyError(err) {
			t.Fatalf("checked with earlier key %s: %T %v", k.Fingerprint(), err, err)
		}
		if rk.Old != k.Fingerprint() || rk.New != cur.Fingerprint() || rk.Seq != 5 {
			t.Errorf("RekeyedError %+v, want %s -> %s at 5", rk, k.Fingerprint(), cur.Fingerprint())
		}
	}
	other := newSigner(9)
	_, err := f.s.Checked(f.ctx, other.Fingerprint(), other.verify)
	var rk *RekeyedError
	if errors.As(err, &rk) || !errors.Is(err, ErrTampered) {
		t.Errorf("checked with a key outside the chain: %T %v, want tampering", err, err)
	}
	if _, err := f.s.Checked(f.ctx, cur.Fingerprint(), cur.verify); err != nil {
		t.Errorf("checked with the current key: %v", err)
	}
}

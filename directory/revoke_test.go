package directory

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// edFprs is Options.Fingerprints for the tests' keys: "ed25519:HEX",
// then "+SUB" for each subkey a copy claims (a revocation that adds one).
func edFprs(armored string) ([]string, error) {
	parts := strings.Split(armored, "+")
	fpr, _, err := edKeyVerifier(parts[0], time.Time{})
	if err != nil {
		return nil, err
	}
	return append([]string{fpr}, parts[1:]...), nil
}

// revokeStore opens the fixture's directory as ccdir does for a change:
// signed by the current key, with the key checks.
func (f *rekeyFixture) revokeStore() *Store {
	f.t.Helper()
	o := f.opts(f.cur())
	o.Fingerprints = edFprs
	s, err := Open(f.ctx, f.path, o)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { s.Close() })
	return s
}

// An earlier key, replaced by a rekey without a revocation, is revoked
// later by a directory.revoke entry signed by the key now: the chain
// names it revoked from that entry on, verify holds, and doing it again
// changes nothing.
func TestRevokeRetired(t *testing.T) {
	f := newRekeyFixture(t)
	s := f.revokeStore()
	k1 := f.keys[0]
	entries, err := s.Update(f.ctx, Operator, func(tx *Tx) error {
		_, err := tx.RevokeRetired(RevokePayload{Fingerprint: strings.ToLower(k1.Fingerprint()), Reason: "found on a stolen laptop", Revocation: k1.armored()})
		return err
	})
	if err != nil || len(entries) != 1 || entries[0].Op != OpDirectoryRevoke {
		t.Fatalf("revoke: %+v %v", entries, err)
	}
	cur := f.cur()
	if head, err := s.Verify(f.ctx, cur.Fingerprint(), cur.verify); err != nil || head.Serial != 7 {
		t.Fatalf("verify after the revoke: %v %v", head, err)
	}
	if _, err := s.Checked(f.ctx, cur.Fingerprint(), cur.verify); err != nil {
		t.Fatal(err)
	}
	chain, err := s.KeyChain(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if k := chain[0]; !k.Revoked || k.Reason != "found on a stolen laptop" || k.Revocation != k1.armored() || k.RevokedSince != 7 || k.RevokedTime != entries[0].Time || k.Until != 3 {
		t.Errorf("chain[0] after the revoke: %+v", k)
	}
	if chain[1].Revoked || chain[2].Revoked {
		t.Errorf("other keys revoked: %+v", chain)
	}
	_, err = s.Update(f.ctx, Operator, func(tx *Tx) error {
		_, err := tx.RevokeRetired(RevokePayload{Fingerprint: k1.Fingerprint(), Reason: "again", Revocation: k1.armored()})
		return err
	})
	if !errors.Is(err, ErrUnchanged) {
		t.Errorf("revoke again: %v, want ErrUnchanged", err)
	}
}

// RevokeRetired refuses the key now, a key not of the chain, a
// revocation of another key or one that adds a subkey, and a reason
// that is not one line; nothing is written.
func TestRevokeRetiredRefused(t *testing.T) {
	f := newRekeyFixture(t)
	s := f.revokeStore()
	head, _ := s.Head(f.ctx)
	k1, k2, other := f.keys[0], f.keys[1], newSigner(9)
	for _, tc := range []struct {
		name string
		p    RevokePayload
		want string
	}{
		{"the key now", RevokePayload{Fingerprint: f.cur().Fingerprint(), Reason: "r", Revocation: f.cur().armored()}, "is the directory's key now, not an earlier one"},
		{"not of the chain", RevokePayload{Fingerprint: other.Fingerprint(), Reason: "r", Revocation: other.armored()}, "is not one of the directory's earlier keys (those: " + k1.Fingerprint() + ", " + k2.Fingerprint() + ")"},
		{"another key's revocation", RevokePayload{Fingerprint: k1.Fingerprint(), Reason: "r", Revocation: k2.armored()}, "the revocation of key " + k1.Fingerprint() + " is another key"},
		{"a subkey added", RevokePayload{Fingerprint: k1.Fingerprint(), Reason: "r", Revocation: k1.armored() + "+EVIL"}, "adds to the key"},
		{"no reason", RevokePayload{Fingerprint: k1.Fingerprint(), Reason: " ", Revocation: k1.armored()}, "a reason of one line"},
		{"two lines", RevokePayload{Fingerprint: k1.Fingerprint(), Reason: "a\nb", Revocation: k1.armored()}, "a reason of one line"},
		{"no revocation", RevokePayload{Fingerprint: k1.Fingerprint(), Reason: "r"}, "needs the key's fingerprint and its revocation"},
	} {
		_, err := s.Update(f.ctx, Operator, func(tx *Tx) error { _, err := tx.RevokeRetired(tc.p); return err })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if h, _ := s.Head(f.ctx); h != head {
		t.Errorf("head moved: %v, was %v", h, head)
	}
}

// A directory.revoke entry written past RevokeRetired's checks (the
// key holder editing the database) does not verify: of the key now, of
// a key not in the chain, of a key revoked already, with a revocation
// that adds a subkey; nor one signed by an earlier key.
func TestRevokeForgedRefusedByVerify(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    func(f *rekeyFixture) RevokePayload
		want string
	}{
		{"the key now", func(f *rekeyFixture) RevokePayload {
			return RevokePayload{Fingerprint: f.cur().Fingerprint(), Reason: "r", Revocation: f.cur().armored()}
		}, "is the directory's key now"},
		{"not of the chain", func(f *rekeyFixture) RevokePayload {
			return RevokePayload{Fingerprint: newSigner(9).Fingerprint(), Reason: "r", Revocation: newSigner(9).armored()}
		}, "is not one of the directory's earlier keys"},
		{"a subkey added", func(f *rekeyFixture) RevokePayload {
			return RevokePayload{Fingerprint: f.keys[0].Fingerprint(), Reason: "r", Revocation: f.keys[0].armored() + "+EVIL"}
		}, "adds to the key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newRekeyFixture(t)
			s := f.revokeStore()
			if _, err := s.Update(f.ctx, Operator, func(tx *Tx) error { return tx.append(opDirectoryRevoke, tc.p(f)) }); err != nil {
				t.Fatal(err)
			}
			cur := f.cur()
			if _, err := s.Verify(f.ctx, cur.Fingerprint(), cur.verify); !IsVerifyError(err) || !strings.Contains(err.Error(), "ledger entry 7: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("verify: %v, want entry 7: %q", err, tc.want)
			}
		})
	}
	t.Run("revoked twice", func(t *testing.T) {
		f := newRekeyFixture(t)
		s := f.revokeStore()
		p := RevokePayload{Fingerprint: f.keys[0].Fingerprint(), Reason: "r", Revocation: f.keys[0].armored()}
		if _, err := s.Update(f.ctx, Operator, func(tx *Tx) error {
			if err := tx.append(opDirectoryRevoke, p); err != nil {
				return err
			}
			return tx.append(opDirectoryRevoke, p)
		}); err != nil {
			t.Fatal(err)
		}
		cur := f.cur()
		if _, err := s.Verify(f.ctx, cur.Fingerprint(), cur.verify); !IsVerifyError(err) || !strings.Contains(err.Error(), "ledger entry 8: ") || !strings.Contains(err.Error(), "revoked already (entry 7)") {
			t.Errorf("verify: %v", err)
		}
	})
	t.Run("signed by the earlier key", func(t *testing.T) {
		f := newRekeyFixture(t)
		o := f.opts(f.keys[0]) // the revoked key's holder signs
		o.Fingerprints = edFprs
		s, err := Open(f.ctx, f.path, o)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		_, err = s.Update(f.ctx, Operator, func(tx *Tx) error {
			tx.checked = true // past the check that the signer is the directory's key
			return tx.forge(opDirectoryRevoke, RevokePayload{Fingerprint: f.keys[1].Fingerprint(), Reason: "r", Revocation: f.keys[1].armored()})
		})
		if err != nil {
			t.Fatal(err)
		}
		cur := f.cur()
		if _, err := s.Verify(f.ctx, cur.Fingerprint(), cur.verify); !IsVerifyError(err) || !strings.Contains(err.Error(), "ledger entry 7") {
			t.Errorf("verify: %v", err)
		}
	})
}

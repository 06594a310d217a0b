package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/export"
	"github.com/ccdir/ccdir/pkg/inbound"
)

// nextSecretName is the new directory key while a rekey installs it: it
// exists only between the rekey's first write and its last, so a home
// that has it is one whose rekey was interrupted (ccdir rekey finishes
// it).
const nextSecretName = "directory.next.sec.asc"

// retiredSecretName is where rekey keeps a replaced directory key's
// secret (0600), for the overlap (rollover.overlap).
func retiredSecretName(fpr string) string {
	return "directory-" + strings.ToUpper(fpr) + ".sec.asc"
}

type rekeyOptions struct {
	algo      string
	revokeOld string // --revoke-old REASON
	revoke    bool   // --revoke-old was given
}

func newRekeyCmd(g *globals) *cobra.Command {
	var o rekeyOptions
	cmd := &cobra.Command{
		Use:   "rekey [--algo ALGO] [--revoke-old REASON]",
		Short: "Replace the directory key with a new one, certified by the old",
		Long: `Make a new directory key and make it the directory's: a new key (--algo;
key.algo by default) with a user ID for each of the directory's addresses
and the expiry of key.lifetime, as init makes one, each user ID certified
by the old key (gpg --check-sigs shows "sig!" by the old key), and
a ledger entry naming it, signed by both keys, each signature on its own.
From then on everything the directory signs is signed by the new key; members
who trusted the old key follow the chain of keys (ccdir verify, ccdir
pubkey prints the current key first, then the earlier ones).

For rollover.overlap (60 days by default) replies and digests say that the
key changed, carry the new key and the old one, and mail encrypted to the old
key is still accepted (with the old secret key, kept for it); after that,
such mail is refused saying so.

--revoke-old REASON is for a compromise: the old key gets a revocation
signature (reason "key compromised", REASON as its text), which the ledger
entry carries and every reply and digest publishes beside the new key, and
mail encrypted to the old key is refused at once (whoever holds it must not
write to the directory). Members should check the new key's fingerprint out
of band: whoever holds the old key could have made a rekey too.

The new key's revocation certificate replaces keys/directory.rev.asc: store
it offline, as after init. A running ccdir serve needs no restart: before
each message it checks the directory's key, and when a rekey that verifies
from the key it loaded moved it on, it loads the new key (with
key.passphrase_file, as at start) and logs "directory key changed by rekey".
While it cannot (the new key's file not yet in place, the passphrase file
unreadable), mail is deferred, the MTA retries it, and serve tries again at
the next message. A key that changed without a rekey entry that verifies
is refused as tampering.

It needs the old key's passphrase (key.passphrase_file); the new key gets
the same passphrase. Without it, or with a wrong one, nothing changes.

The files change in an order that a crash cannot break: the new secret key
is written to keys/` + nextSecretName + ` first, then the ledger entry is
committed, then the old secret key is kept as keys/directory-FINGERPRINT.sec.asc
(0600), keys/` + publicName + ` gets the new public key and the new secret
key replaces keys/` + secretName + `. A home left with keys/` + nextSecretName + `
had its rekey interrupted: run ccdir rekey again and it finishes the
rekey the ledger names (or, if the ledger never named the new key, drops it
and makes another).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.revoke = cmd.Flags().Changed("revoke-old")
			return runRekey(cmd.Context(), o, g)
		},
	}
	cmd.Flags().StringVar(&o.algo, "algo", "", "the new key's algorithm: ed25519, rsa3072 or rsa4096 (default: key.algo)")
	cmd.Flags().StringVar(&o.revokeOld, "revoke-old", "", "revoke the old key, compromised, for REASON (one line)")
	return cmd
}

func runRekey(ctx context.Context, o rekeyOptions, g *globals) error {
	if err := g.checkHome(); err != nil {
		return err
	}
	algoName := o.algo
	if algoName == "" {
		algoName = g.text("key.algo")
	}
	algo, err := keys.ParseAlgo(algoName)
	if err != nil {
		return usagef("--algo: %v", err)
	}
	if o.revoke && strings.TrimSpace(o.revokeOld) == "" || strings.ContainsAny(o.revokeOld, "\x00\r\n") {
		return usagef("--revoke-old wants a reason of one line, e.g. --revoke-old 'the key file was copied off the server'")
	}
	pass, err := g.passphrase()
	if err != nil {
		return err
	}
	old, err := g.secretKey()
	if err != nil {
		return err
	}
	if err := usableDirectoryKey(old, g.now()); err != nil {
		return err // an expired key certifies and signs nothing
	}
	s, err := g.openSigner(ctx, old)
	if err != nil {
		return err
	}
	defer s.Close()
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	nextPath := g.path(keysDir, nextSecretName)
	if _, err := os.Stat(nextPath); err == nil {
		fpr, err := keys.SecretFileFingerprint(nextPath)
		switch {
		case err == nil && strings.EqualFold(fpr, info.KeyFingerprint) && !strings.EqualFold(fpr, old.Fingerprint()):
			// The ledger names it: finish installing it.
			next, err := keys.ReadSecretFile(nextPath, pass)
			if err != nil {
				return withHint(err, "the passphrase of the new key is the old key's")
			}
			if err := g.installKey(old, next); err != nil {
				return err
			}
			return g.rekeyed(ctx, s, old, next, "finished the interrupted rekey")
		case strings.EqualFold(info.KeyFingerprint, old.Fingerprint()):
			// A rekey that never reached the ledger: its key was never used.
			if err := os.Remove(nextPath); err != nil {
				return err
			}
			g.warnf("removed %s, the new key of a rekey that was interrupted before the ledger named it", nextPath)
		default:
			return fmt.Errorf("%s holds key %s, but the directory's key is %s and this home's is %s: restore the home from a backup", nextPath, fpr, info.KeyFingerprint, old.Fingerprint())
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if !strings.EqualFold(info.KeyFingerprint, old.Fingerprint()) {
		return withHint(fmt.Errorf("the key in %s (%s) is not the directory's key (%s)", g.path(keysDir, secretName), old.Fingerprint(), info.KeyFingerprint),
			"restore the home from a backup and run ccdir verify")
	}
	// Check the ledger before anything is written.
	pub, err := g.publicKey()
	if err != nil {
		return err
	}
	v, err := pub.NewVerifier(g.now())
	if err != nil {
		return err
	}
	if _, err := s.Checked(ctx, pub.Fingerprint, v.Verify); err != nil {
		return err
	}

	// The same user IDs (one per address the directory answers on), the
	// expiry of key.lifetime.
	next, err := keys.Successor(old, keys.KeySpec{Name: info.Name, Emails: keyAddresses(info), Algo: algo,
		Lifetime: g.duration("key.lifetime"), Now: g.now(), Rand: rand.Reader})
	if err != nil {
		return fmt.Errorf("make the new key: %w", err)
	}
	next.SetClock(g.now)
	armored, err := next.Public().ArmoredWith(old.Public())
	if err != nil {
		return err
	}
	p := directory.RekeyPayload{OldFingerprint: old.Fingerprint(), NewFingerprint: next.Fingerprint(), PublicKey: string(armored)}
	if o.revokeOld != "" {
		rev, err := old.Revoked(o.revokeOld, g.now())
		if err != nil {
			return err
		}
		p.Revoked, p.Reason, p.Revocation = true, strings.TrimSpace(o.revokeOld), string(rev)
	}
	// 1. The new secret key, beside the old one.
	if err := next.WriteFile(nextPath, pass); err != nil {
		return err
	}
	// 2. The ledger names it; until then, removing it undoes the rekey.
	if _, err := s.Update(ctx, g.operatorActor(), func(tx *directory.Tx) error {
		return tx.Rekey(next, p)
	}); err != nil {
		os.Remove(nextPath)
		return err
	}
	// 3. The files follow the ledger.
	if err := g.installKey(old, next); err != nil {
		return withHint(err, "the ledger names the new key: run ccdir rekey again to finish")
	}
	return g.rekeyed(ctx, s, old, next, "rekeyed")
}

// installKey makes next the home's key once the ledger names it: the old
// secret key is kept as keys/directory-FPR.sec.asc, the public key file
// gets next's, and next's secret key (keys/directory.next.sec.asc)
// replaces the old one. Each step can be done again: a rekey interrupted
// anywhere here is finished by running it again.
func (g *globals) installKey(old, next *keys.Secret) error {
	cur := g.path(keysDir, secretName)
	keep := g.path(keysDir, retiredSecretName(old.Fingerprint()))
	if fpr, err := keys.SecretFileFingerprint(cur); err == nil && strings.EqualFold(fpr, old.Fingerprint()) {
		data, err := os.ReadFile(cur)
		if err != nil {
			return err
		}
		if prev, err := os.ReadFile(keep); err != nil || !bytes.Equal(prev, data) {
			if err := writeFileAtomic(keep, data, 0o600); err != nil {
				return fmt.Errorf("keep the old key: %w", err)
			}
		}
		clear(data)
	}
	armored, err := next.Public().ArmoredWith(old.Public())
	if err != nil {
		return err
	}
	if err := writeFileAtomic(g.path(keysDir, publicName), armored, 0o644); err != nil {
		return err
	}
	if err := g.installRevocationCert(old, next); err != nil {
		return err
	}
	if err := os.Rename(g.path(keysDir, nextSecretName), cur); err != nil {
		return fmt.Errorf("install the new key: %w", err)
	}
	return syncDir(g.path(keysDir))
}

// installRevocationCert writes next's revocation certificate to
// keys/directory.rev.asc (0600), as init does for the first key; the old
// key's, if it is still there, is kept as keys/directory-FPR.rev.asc. A
// certificate of next already in place is left as it is.
func (g *globals) installRevocationCert(old, next *keys.Secret) error {
	path := g.path(keysDir, revocationName)
	if data, err := os.ReadFile(path); err == nil {
		c, err := keys.ParseRevocationCert(data)
		switch {
		case err == nil && c.Of(next.Public()):
			return nil
		case err == nil && c.Of(old.Public()):
			if err := writeFileAtomic(g.path(keysDir, "directory-"+old.Fingerprint()+".rev.asc"), data, 0o600); err != nil {
				return err
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	rev, err := next.RevocationCertificate(g.now())
	if err != nil {
		return err
	}
	return writeFileAtomic(path, rev, 0o600)
}

// rekeyed reports a rekey.
func (g *globals) rekeyed(ctx context.Context, s *directory.Store, old, next *keys.Secret, what string) error {
	head, err := s.Head(ctx)
	if err != nil {
		return err
	}
	if g.json {
		out := map[string]any{"result": what, "old_key": old.Fingerprint(), "key": next.Fingerprint(),
			"algo": next.Public().Algorithm, "serial": head.Serial, "head": head.Hash,
			"old_secret_key": g.path(keysDir, retiredSecretName(old.Fingerprint())), "revocation_certificate": g.path(keysDir, revocationName)}
		if kc, err := g.keyChange(ctx, s); err == nil && kc != nil {
			out["old_revoked"] = kc.Revoked
			if !kc.Revoked {
				out["overlap_until"] = kc.Until.UTC().Format(time.RFC3339)
			}
		}
		return g.printJSON(out)
	}
	g.printf("%s: the directory key is now %s (%s), certified by %s\n", what, keys.GroupFingerprint(next.Fingerprint()), next.Public().Algorithm, keys.GroupFingerprint(old.Fingerprint()))
	g.printf("the old secret key is kept in %s:\n", g.path(keysDir, retiredSecretName(old.Fingerprint())))
	if kc, err := g.keyChange(ctx, s); err == nil && kc != nil && kc.Revoked {
		g.printf("  the old key is revoked: mail encrypted to it is refused, and ccdir no longer reads it; delete it\n")
	} else if err == nil && kc != nil {
		g.printf("  mail encrypted to it is accepted until %s (rollover.overlap); after that ccdir no longer reads it: move it offline or delete it\n",
			kc.Until.UTC().Format(time.DateOnly))
	}
	g.printf("revocation certificate %s: it revokes the new key without the passphrase;\n", g.path(keysDir, revocationName))
	g.printf("  store it offline (a printout, a USB stick in a safe), then delete it from this host\n")
	g.printf("a running ccdir serve loads the new key at its next message: no restart\n")
	g.printf("ok %s\n", head)
	return nil
}

// earlierKeys are the directory's earlier keys, from its chain (ccdir
// rekey), the latest first, each as the ledger gives it: a revoked one
// with its revocation. chain is the whole chain, the current key last.
func earlierKeys(chain []directory.ChainKey) ([]*keys.Public, error) {
	var out []*keys.Public
	for i := len(chain) - 2; i >= 0; i-- {
		k := chain[i]
		armored := k.PublicKey
		if k.Revoked {
			armored = k.Revocation
		}
		p, err := keys.ParsePublicOne([]byte(armored))
		if err != nil {
			return nil, fmt.Errorf("the directory's earlier key %s (ledger entry %d): %w", k.Fingerprint, k.Since, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// retiredKeys are the directory's earlier keys for the incoming-mail
// pipeline (inbound.RetiredKey): each with the end of its overlap
// (rollover.overlap after the rekey that replaced it) and, while that
// lasts and it is not revoked, its secret key, kept by rekey and
// unlocked with the directory key's passphrase. A secret key that cannot
// be read is warned about; mail to that key is refused.
func (g *globals) retiredKeys(ctx context.Context, s *directory.Store) ([]inbound.RetiredKey, error) {
	chain, err := s.KeyChain(ctx)
	if err != nil {
		return nil, err
	}
	overlap := g.duration("rollover.overlap")
	now := g.now()
	var out []inbound.RetiredKey
	for _, k := range chain[:len(chain)-1] {
		pub, err := keys.ParsePublicOne([]byte(k.PublicKey))
		if err != nil {
			return nil, fmt.Errorf("the directory's earlier key %s (ledger entry %d): %w", k.Fingerprint, k.Since, err)
		}
		replaced, err := time.Parse(time.RFC3339, k.UntilTime)
		if err != nil {
			return nil, fmt.Errorf("ledger entry %d: bad time %q", k.Until, k.UntilTime)
		}
		r := inbound.RetiredKey{Public: pub, Replaced: replaced, Until: replaced.Add(overlap), Revoked: k.Revoked, Reason: k.Reason}
		if k.Revoked {
			if r.RevokedAt, err = time.Parse(time.RFC3339, k.RevokedTime); err != nil {
				return nil, fmt.Errorf("ledger entry %d: bad time %q", k.RevokedSince, k.RevokedTime)
			}
		}
		if !r.Revoked && now.Before(r.Until) && (pub.Expires.IsZero() || now.Before(pub.Expires)) {
			path := g.path(keysDir, retiredSecretName(k.Fingerprint))
			pass, err := g.passphrase()
			if err == nil {
				r.Secret, err = keys.ReadSecretFile(path, pass)
			}
			if err == nil && r.Secret.Fingerprint() != k.Fingerprint {
				r.Secret, err = nil, fmt.Errorf("%s holds key %s", path, r.Secret.Fingerprint())
			}
			if err != nil {
				g.warnf("mail encrypted to the directory's earlier key %s is refused: its secret key cannot be read: %v", k.Fingerprint, err)
				r.Secret = nil
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// keyChange is the directory's last rekey as replies and digests tell it
// (export.KeyChange), nil when its key was never changed.
func (g *globals) keyChange(ctx context.Context, s *directory.Store) (*export.KeyChange, error) {
	chain, err := s.KeyChain(ctx)
	if err != nil || len(chain) < 2 {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	old, cur := chain[len(chain)-2], chain[len(chain)-1]
	replaced, err := time.Parse(time.RFC3339, cur.SinceTime)
	if err != nil {
		return nil, fmt.Errorf("ledger entry %d: bad time %q", cur.Since, cur.SinceTime)
	}
	oldKey := old.PublicKey
	if old.Revoked {
		oldKey = old.Revocation
	}
	armored := strings.TrimRight(info.PublicKey, "\n") + "\n" + strings.TrimRight(oldKey, "\n") + "\n"
	return &export.KeyChange{Old: old.Fingerprint, New: cur.Fingerprint, Replaced: replaced,
		Until: replaced.Add(g.duration("rollover.overlap")), Revoked: old.Revoked, Reason: old.Reason, Keys: []byte(armored)}, nil
}

// rekeySummary is what ccdir log says of a directory.rekey entry.
func rekeySummary(payload string) string {
	var p directory.RekeyPayload
	if err := json.Unmarshal([]byte(payload), &p); err != nil {
		return "(unreadable payload)"
	}
	s := fmt.Sprintf("directory key %s replaced by %s", p.OldFingerprint, p.NewFingerprint)
	if p.Revoked {
		s += fmt.Sprintf(", the old key revoked (%s)", p.Reason)
	}
	return s
}

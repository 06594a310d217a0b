package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
)

// keyAddresses are the addresses the directory key carries a user ID
// for: the command address (the primary user ID) and the list's, so
// that mail clients find the key by the address they write to (an
// OpenPGP user ID is one exact address).
func keyAddresses(info directory.Info) []string {
	addrs := []string{info.Address}
	if info.ListAddress != "" {
		addrs = append(addrs, info.ListAddress)
	}
	return addrs
}

type keyUpdateUIDsOptions struct {
	renew bool
}

func newKeyUpdateUIDsCmd(g *globals) *cobra.Command {
	var o keyUpdateUIDsOptions
	cmd := &cobra.Command{
		Use:   "update-uids [--renew]",
		Short: "Give the directory key a user ID for every address of the directory; --renew its expiry",
		Long: `Give the directory's own key a user ID for each address it answers on: the
command address (the primary user ID) and the list's address, so that
gpg -r ADDRESS, mutt, Thunderbird and K-9 find the key by the address they
write to. A home made by init has them already; this is for homes made
before, whose key has a user ID for the command address only.

The new user IDs are self-certified with the key's expiry kept; the key
keeps its fingerprint. --renew also sets the expiry to key.lifetime from
now (default 2y; 0: the key never expires), with new self-signatures on
every user ID: the way to extend a key before (or after) it expires, which
ccdir report reminds the operator of. A new key is ccdir rekey, not this.

Both key files (keys/, the secret one 0600, re-encrypted with the
passphrase, which this command needs) are replaced at once, and a signed
ledger entry (directory.key) records the new public key: digests, HELP
replies and key requests carry it from then on. Members get the new user
IDs or expiry by importing it again (ccdir pubkey, the copy attached to a
digest or HELP reply); publish it again if you do (pubkey --wkd, --dane).
A running ccdir serve needs no restart: at its next message it sees the
new public key in the directory and loads the key file again (with
key.passphrase_file), so it signs with the renewed key.

Nothing to add and no --renew: it says so and writes nothing.

EXIT STATUS
  0 updated (or nothing to add), 1 error (nothing changed)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runKeyUpdateUIDs(cmd.Context(), o, g)
		},
	}
	cmd.Flags().BoolVar(&o.renew, "renew", false, "also set the key's expiry to key.lifetime from now")
	return cmd
}

func runKeyUpdateUIDs(ctx context.Context, o keyUpdateUIDsOptions, g *globals) error {
	if err := g.checkHome(); err != nil {
		return err
	}
	sec, err := g.secretKey()
	if err != nil {
		return err
	}
	now := g.now()
	old := sec.Expires()
	if o.renew {
		var exp time.Time
		if d := g.duration("key.lifetime"); d > 0 {
			exp = now.Truncate(time.Second).Add(d)
		}
		if sec, err = sec.WithExpiry(exp, now); err != nil {
			return fmt.Errorf("renew the directory key: %w", err)
		}
		sec.SetClock(g.now)
	} else if err := usableDirectoryKey(sec, now); err != nil {
		return err
	}
	// The store signs with the key as it will be: a renewed key signs
	// even if the old copy has expired.
	s, err := g.openWriteWith(ctx, sec)
	if err != nil {
		return err
	}
	defer s.Close()
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	var ch keys.UserIDChange
	var newKey *keys.Secret
	entries, err := s.Update(ctx, g.operatorActor(), func(tx *directory.Tx) (err error) {
		newKey, ch, err = g.setKeyUserIDs(tx, sec, info, keyAddresses(info))
		return err
	})
	addrs := strings.Join(keyAddresses(info), ", ")
	if errors.Is(err, directory.ErrUnchanged) {
		return g.unchanged(fmt.Sprintf("unchanged: the directory key %s has a user ID for every address (%s)", sec.Fingerprint(), addrs))
	}
	if err != nil {
		return err
	}
	what := fmt.Sprintf("directory key %s: user IDs for %s", newKey.Fingerprint(), addrs)
	if len(ch.Added) > 0 {
		what += "; added " + strings.Join(ch.Added, ", ")
	}
	if len(ch.Revoked) > 0 {
		what += "; revoked " + strings.Join(ch.Revoked, ", ")
	}
	if o.renew {
		what += fmt.Sprintf("; renewed: %s (was: %s)", keyExpiryText(newKey.Expires(), now), keyExpiryText(old, now))
	} else if !ch.Changed() {
		what += "; the ledger's copy of the key brought up to date"
	}
	return g.changed(entries, what+"\nmembers get the new copy with the key: ccdir pubkey, a HELP reply, or the next digest", nil)
}

// setKeyUserIDs gives the directory key sec exactly the user IDs of
// emails (keys.Secret.WithUserIDs; the first is the command address)
// inside tx: a directory.key ledger entry with the new public key, and
// both key files replaced (the secret one re-encrypted with the
// passphrase) before tx commits, so that a failure writing them leaves
// the ledger as it was. It is the one place the directory key's user
// IDs change. Nothing to change (the key has those user IDs and the
// ledger its copy) is directory.ErrUnchanged. It returns the new key.
func (g *globals) setKeyUserIDs(tx *directory.Tx, sec *keys.Secret, info directory.Info, emails []string) (*keys.Secret, keys.UserIDChange, error) {
	newKey, ch, err := sec.WithUserIDs(info.Name, emails, g.now())
	if err != nil {
		return nil, ch, fmt.Errorf("directory key: %w", err)
	}
	// The certifications by the directory's earlier keys stay (ccdir rekey).
	chain, err := tx.KeyChain()
	if err != nil {
		return nil, ch, err
	}
	earlier, err := earlierKeys(chain)
	if err != nil {
		return nil, ch, err
	}
	pub, err := newKey.Public().ArmoredWith(earlier...)
	if err != nil {
		return nil, ch, err
	}
	if _, err := tx.SetDirectoryKey(string(pub)); err != nil {
		return nil, ch, err
	}
	pass, err := g.passphrase()
	if err != nil {
		return nil, ch, err
	}
	priv, err := newKey.ArmoredPrivate(pass)
	if err != nil {
		return nil, ch, err
	}
	defer clear(priv)
	if err := writeFilesAtomic(
		fileWrite{path: g.path(keysDir, secretName), data: priv, perm: 0o600},
		fileWrite{path: g.path(keysDir, publicName), data: pub, perm: 0o644},
	); err != nil {
		return nil, ch, fmt.Errorf("write the directory key files: %w", err)
	}
	newKey.SetClock(g.now)
	return newKey, ch, nil
}

// directoryKeySummary is what ccdir log says of a directory.key entry:
// the key it carries (its own fingerprint, read from the key, not the
// payload's label) and the addresses of its user IDs; a key that is not
// the one the entry names, or no key, is said so (verify refuses it).
func directoryKeySummary(payload string) string {
	var p struct {
		Fingerprint string `json:"fingerprint"`
		PublicKey   string `json:"public_key"`
	}
	if err := json.Unmarshal([]byte(payload), &p); err != nil {
		return "(unreadable payload)"
	}
	pub, err := keys.ParsePublicOne([]byte(p.PublicKey))
	if err != nil {
		return fmt.Sprintf("directory key: no readable key (%v), labelled %s", err, p.Fingerprint)
	}
	s := "directory key " + pub.Fingerprint
	if !strings.EqualFold(pub.Fingerprint, p.Fingerprint) {
		s += fmt.Sprintf(", NOT the key %s the entry names", strings.ToUpper(p.Fingerprint))
	}
	s += ", user IDs " + strings.Join(pub.Emails, " ")
	if exp := pub.Expires; !exp.IsZero() {
		s += ", expires " + exp.UTC().Format(time.DateOnly)
	}
	return s
}

// expiresText is an expiry in layout, "" for never.
func expiresText(t time.Time, layout string) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(layout)
}

// keyExpiryText says when the directory key expires, as of now:
// "expires 2028-10-31", "expired 2028-10-31", "never expires".
func keyExpiryText(exp, now time.Time) string {
	switch {
	case exp.IsZero():
		return "never expires"
	case !exp.After(now):
		return "expired " + exp.UTC().Format(time.DateOnly)
	}
	return "expires " + exp.UTC().Format(time.DateOnly)
}

// usableDirectoryKey refuses a directory key that has expired: it signs
// nothing (no ledger entry, digest or reply) until its expiry is renewed.
func usableDirectoryKey(sec *keys.Secret, now time.Time) error {
	if exp := sec.Expires(); !exp.IsZero() && !exp.After(now) {
		return withHint(fmt.Errorf("the directory key %s expired on %s: it signs nothing", sec.Fingerprint(), exp.UTC().Format(time.DateOnly)),
			"renew it (the same key, a new expiry of key.lifetime from now): ccdir key update-uids --renew")
	}
	return nil
}

// directoryVerifier checks signatures by the directory key pub, valid
// at now, or, if it has expired, as it was just before its expiry: what
// it signed while valid stays checkable (verify, the tables' check),
// and it signs nothing after (usableDirectoryKey).
func directoryVerifier(pub *keys.Public, now time.Time) (*keys.Verifier, error) {
	if exp := pub.Expires; !exp.IsZero() && !exp.After(now) {
		now = exp.Add(-time.Second)
	}
	return pub.NewVerifier(now)
}

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

func newKeyUpdateUIDsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "update-uids",
		Short: "Give the directory key a user ID for every address of the directory",
		Long: `Give the directory's own key a user ID for each address it answers on: the
command address (the primary user ID) and the list's address, so that
gpg -r ADDRESS, mutt, Thunderbird and K-9 find the key by the address they
write to. A home made by init has them already; this is for homes made
before, whose key has a user ID for the command address only.

The new user IDs are self-certified with the key's expiry kept; the key
keeps its fingerprint. Both key files (keys/, the secret one 0600,
re-encrypted with the passphrase, which this command needs) are replaced
at once, and a signed ledger entry (directory.key) records the new public
key: digests, HELP replies and key requests carry it from then on. Members
get the user IDs by importing it again (ccdir pubkey, or the copy attached
to a HELP reply).

Nothing to add: it says so and writes nothing.

EXIT STATUS
  0 updated (or nothing to add), 1 error (nothing changed)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runKeyUpdateUIDs(cmd.Context(), g)
		},
	}
}

func runKeyUpdateUIDs(ctx context.Context, g *globals) error {
	s, sec, err := g.openWriteKey(ctx)
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
	if !ch.Changed() {
		what += "; the ledger's copy of the key brought up to date"
	}
	return g.changed(entries, what+"\nmembers get them with the key: ccdir pubkey, a HELP reply, or the next digest", nil)
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
	pub, err := newKey.Public().Armored()
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
// the key and the addresses of its user IDs.
func directoryKeySummary(payload string) string {
	var p struct {
		Fingerprint string `json:"fingerprint"`
		PublicKey   string `json:"public_key"`
	}
	if err := json.Unmarshal([]byte(payload), &p); err != nil {
		return "(unreadable payload)"
	}
	s := "directory key " + p.Fingerprint
	if pub, err := keys.ParsePublicOne([]byte(p.PublicKey)); err == nil {
		s += ", user IDs " + strings.Join(pub.Emails, " ")
		if exp := pub.Expires; !exp.IsZero() {
			s += ", expires " + exp.UTC().Format(time.DateOnly)
		}
	}
	return s
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
)

type keyRevokeRetiredOptions struct {
	reason string
	cert   string // --revocation-cert FILE
}

func newKeyRevokeRetiredCmd(g *globals) *cobra.Command {
	var o keyRevokeRetiredOptions
	cmd := &cobra.Command{
		Use:   "revoke-retired FINGERPRINT --reason REASON [--revocation-cert FILE]",
		Short: "Revoke one of the directory's earlier keys, replaced by a rekey without --revoke-old",
		Long: `Revoke an earlier directory key (one a ccdir rekey replaced, without
--revoke-old) when it turns out later to be compromised: a leak found after
the rollover. The directory's key now is revoked by ccdir rekey
--revoke-old REASON, not this.

The earlier key gets a revocation (reason "key compromised", REASON as its
text), made with its secret key, kept by rekey as
keys/directory-FINGERPRINT.sec.asc and unlocked with the directory key's
passphrase (key.passphrase_file). Without that file (moved offline or
deleted, as rekey advised), give the key's revocation certificate with
--revocation-cert FILE (the keys/directory.rev.asc that init or rekey
wrote for it and you stored offline); a certificate rekey kept as
keys/directory-FINGERPRINT.rev.asc is taken when neither is there.

A signed ledger entry (directory.revoke, signed by the directory's key now)
records the revocation. From then on:
  - mail encrypted to the earlier key is refused, saying it was revoked,
    even within rollover.overlap; its secret key file is deleted;
  - replies and digests (the key chain in directory.json), ccdir pubkey and
    pubkey --wkd carry the key with its revocation, so members' gpg and
    mail clients learn it when they import the keys;
  - ccdir check does not follow the key chain past the revoked key: members
    who pinned it re-pin the current key out of band.
A running ccdir serve sees the entry at its next message and reloads its
earlier keys: from that message on, mail encrypted to the key is refused
(no restart).

It needs the passphrase (key.passphrase_file). A key already revoked
changes nothing.

EXIT STATUS
  0 revoked (or revoked already), 1 error, 2 usage (nothing changed)`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runKeyRevokeRetired(cmd.Context(), o, g, args[0])
		},
	}
	cmd.Flags().StringVar(&o.reason, "reason", "", "why the key is revoked (one line; required)")
	cmd.Flags().StringVar(&o.cert, "revocation-cert", "", "the earlier key's revocation certificate, when its secret key is not at hand")
	return cmd
}

func runKeyRevokeRetired(ctx context.Context, o keyRevokeRetiredOptions, g *globals, arg string) error {
	fpr := strings.ToUpper(strings.ReplaceAll(arg, " ", ""))
	reason := strings.TrimSpace(o.reason)
	if reason == "" || strings.ContainsAny(o.reason, "\x00\r\n") {
		return usagef("--reason wants a reason of one line, e.g. --reason 'the old key file was found on a stolen laptop'")
	}
	s, _, err := g.openWriteKey(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	chain, err := s.KeyChain(ctx)
	if err != nil {
		return err
	}
	var k *directory.ChainKey
	for i := range chain[:len(chain)-1] {
		if strings.EqualFold(chain[i].Fingerprint, fpr) {
			k = &chain[i]
		}
	}
	cur := chain[len(chain)-1]
	switch {
	case strings.EqualFold(cur.Fingerprint, fpr):
		return withHint(fmt.Errorf("key %s is the directory's key now, not an earlier one", fpr),
			"a rekey replaces and revokes it: ccdir rekey --revoke-old REASON")
	case k == nil:
		return withHint(fmt.Errorf("key %s is not one of the directory's earlier keys", fpr),
			"ccdir pubkey --json lists them (previous); ccdir log shows the rekeys")
	case k.Revoked:
		return g.unchanged(fmt.Sprintf("unchanged: the directory's earlier key %s is revoked already (entry %d: %s)", k.Fingerprint, k.RevokedSince, k.Reason))
	}
	rev, from, err := g.retiredRevocation(k, o.cert, reason)
	if err != nil {
		return err
	}
	entries, err := s.Update(ctx, g.operatorActor(), func(tx *directory.Tx) error {
		_, err := tx.RevokeRetired(directory.RevokePayload{Fingerprint: k.Fingerprint, Reason: reason, Revocation: string(rev)})
		return err
	})
	if errors.Is(err, directory.ErrUnchanged) {
		return g.unchanged(fmt.Sprintf("unchanged: the directory's earlier key %s is revoked already", k.Fingerprint))
	}
	if err != nil {
		return err
	}
	what := fmt.Sprintf("revoked the directory's earlier key %s (%s), with %s\n", keys.GroupFingerprint(k.Fingerprint), reason, from)
	// Its secret key is no longer used: mail to the key is refused.
	secPath := g.path(keysDir, retiredSecretName(k.Fingerprint))
	switch err := os.Remove(secPath); {
	case err == nil:
		what += fmt.Sprintf("deleted its secret key %s: mail encrypted to it is refused\n", secPath)
	case errors.Is(err, fs.ErrNotExist):
		what += "mail encrypted to it is refused\n"
	default:
		g.warnf("could not delete %s: %v; ccdir no longer reads it: delete it by hand", secPath, err)
	}
	what += "replies, digests and ccdir pubkey carry its revocation from now on; a running ccdir serve refuses mail to it from its next message"
	return g.changed(entries, what, nil)
}

// retiredRevocation is the earlier key k, armored with a revocation:
// made with its secret key (keys/directory-FPR.sec.asc, reason "key
// compromised" and reason), or a revocation certificate (certFile, else
// the one rekey kept as keys/directory-FPR.rev.asc) applied to it. It
// says which.
func (g *globals) retiredRevocation(k *directory.ChainKey, certFile, reason string) ([]byte, string, error) {
	pub, err := keys.ParsePublicOne([]byte(k.PublicKey))
	if err != nil {
		return nil, "", fmt.Errorf("the directory's earlier key %s (ledger entry %d): %w", k.Fingerprint, k.Since, err)
	}
	var armored []byte
	var from string
	secPath := g.path(keysDir, retiredSecretName(k.Fingerprint))
	keptCert := g.path(keysDir, "directory-"+strings.ToUpper(k.Fingerprint)+".rev.asc")
	_, secErr := os.Stat(secPath)
	_, certErr := os.Stat(keptCert)
	switch {
	case certFile != "" || secErr != nil && certErr == nil:
		if certFile == "" {
			certFile = keptCert
		}
		data, err := os.ReadFile(certFile)
		if err != nil {
			return nil, "", err
		}
		c, err := keys.ParseRevocationCert(data)
		if err != nil {
			return nil, "", withHint(fmt.Errorf("%s: %w", certFile, err), "give the key's revocation certificate, as init or rekey wrote it (keys/directory.rev.asc then)")
		}
		rp, err := pub.Revoke(c)
		if err != nil {
			return nil, "", withHint(fmt.Errorf("%s: %w", certFile, err), "that is another key's certificate: give the one of %s", k.Fingerprint)
		}
		if armored, err = rp.Armored(); err != nil {
			return nil, "", err
		}
		from = "the revocation certificate " + certFile
	case secErr == nil:
		pass, err := g.passphrase()
		if err != nil {
			return nil, "", err
		}
		sec, err := keys.ReadSecretFile(secPath, pass)
		if err != nil {
			return nil, "", withHint(fmt.Errorf("%s: %w", secPath, err), "the earlier key has the directory key's passphrase (key.passphrase_file); or give its revocation certificate with --revocation-cert FILE")
		}
		if sec.Fingerprint() != k.Fingerprint {
			return nil, "", fmt.Errorf("%s holds key %s, not %s", secPath, sec.Fingerprint(), k.Fingerprint)
		}
		if armored, err = sec.Revoked(reason, g.now()); err != nil {
			return nil, "", err
		}
		from = "its secret key " + secPath
	default:
		return nil, "", withHint(fmt.Errorf("neither the secret key of %s (%s) nor a revocation certificate of it is at hand", k.Fingerprint, secPath),
			"give its revocation certificate (the keys/directory.rev.asc of its time, stored offline) with --revocation-cert FILE, or put its secret key file back")
	}
	// What members import must revoke the key itself.
	rp, err := keys.ParsePublicOne(armored)
	if err != nil {
		return nil, "", err
	}
	for _, r := range rp.Revocations() {
		if r.Subkey == "" {
			return armored, from, nil
		}
	}
	return nil, "", fmt.Errorf("the revocation made for %s does not revoke it", k.Fingerprint)
}

// revokeSummary is what ccdir log says of a directory.revoke entry.
func revokeSummary(payload string) string {
	var p directory.RevokePayload
	if err := json.Unmarshal([]byte(payload), &p); err != nil {
		return "(unreadable payload)"
	}
	return fmt.Sprintf("the directory's earlier key %s revoked (%s)", p.Fingerprint, p.Reason)
}

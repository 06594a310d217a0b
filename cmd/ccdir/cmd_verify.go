package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/digest"
	"github.com/ccdir/ccdir/pkg/inbound"
	"github.com/ccdir/ccdir/pkg/liveness"
	"github.com/ccdir/ccdir/pkg/outbox"
)

// verifyOptions are verify's flags: what the auditor knows from outside
// the home.
type verifyOptions struct {
	pin      string // --key: the directory key's fingerprint
	wantHead string // --head: SERIAL:HASH published earlier
}

func newVerifyCmd(g *globals) *cobra.Command {
	var o verifyOptions
	cmd := &cobra.Command{
		Use:   "verify [--key FINGERPRINT] [--head SERIAL:HASH]",
		Short: "Check the ledger's hashes and signatures and that the directory is exactly its replay",
		Long: `Replay the whole ledger into a fresh in-memory database, compare it with the
state tables row by row, and check the hash chain and every entry's signature
by the directory key (keys/directory.pub.asc, which must match the secret key
beside it). Prints "ok serial N head HASH" and the key it trusted, or names
the first entry or row that does not match. Each copy of the directory's
own key the ledger gives (the genesis, a rekey, key update-uids) must be
exactly the key it is named by, keeping its subkeys: the copy digests and
HELP replies attach is the key that signs. Every change a member asked
for by signed mail, made at once or applied after it waited, is checked
again from the evidence kept with it, against the key registered for the
member just before it (on an auditor's copy too): an entry the directory
key signed in a member's name over a mail the member did not sign is
named, and so is one signed mail kept by two separate entries. This is a
signature check, not a content check: it proves that the member's key
signed the mail kept, not that the mail asked for exactly what the entry
did (compare them: ccdir log --evidence N). ccdir log --evidence N -o
FILE writes that evidence for gpg --verify and sq verify.

Evidence an older ccdir kept as the whole mail is read again as the mail
was, and must carry the member's signature; after the ledger's first
evidence of the current form (ccdir evidence v1) a whole mail is refused,
as no ccdir that writes that form keeps whole mails. A whole mail that
was encrypted to the directory key is opened with the home's secret key
(key.passphrase_file if it has one); on a copy without it such an entry
is named with a warning, NOT CHECKED (and in --json "unchecked"), and
verify still says ok: those entries were written so by every ccdir before
evidence v1, and refusing them would fail every audit of such a home for
good; check them on the home itself.

verify only reads: it opens the database read-only and never migrates it,
so it runs on a read-only copy of a home (one taken while a ccdir had the
home open, its WAL file holding commits, is read through a private copy in
TMPDIR). An auditor's copy needs only the
public key: without keys/directory.sec.asc, --key is required and the public
key file must be the key it names. A home made by a ccdir older than schema
versions (no schema_migrations table) is refused until a command that writes
(e.g. ccdir outbox list) has migrated it; one made by a newer ccdir is
refused too.

Someone who can write the whole home can replace the key and the ledger
together. Pin what you know from outside: --key with the directory key's
fingerprint (as members see it in every digest), --head with a serial and
head hash published earlier (a digest, an export): that entry must still be
in the ledger, unchanged.

Entries a contact erase redacted are named ("entry 12 redacted by entry 40
(erase: REASON)"): an erased payload or evidence that no contact.erase entry
covers is tampering.

verify also checks the mail waiting in the outbox: a queued message that
fails authentication with keys/outbox.key was written into the database by
someone without the key (ccdir never sends it) and is reported as
tampering. Without keys/outbox.key (an auditor's copy) the outbox is not
checked.

EXIT STATUS
  0 ok, 1 error (the check could not run), 3 the directory does not match its
  ledger, the outbox holds mail this ccdir did not queue, or a pending change
  waits whose row this ccdir did not write`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerify(cmd.Context(), o, g)
		},
	}
	cmd.Flags().StringVar(&o.pin, "key", "", "a directory key's fingerprint, known from outside the home: the key now or any earlier one of its chain")
	cmd.Flags().StringVar(&o.wantHead, "head", "", "SERIAL:HASH of a head published earlier, which must be in the ledger")
	return cmd
}

func runVerify(ctx context.Context, o verifyOptions, g *globals) error {
	// Open the database first: a missing home, or a database
	// that is damaged or not ours, says more than a missing key.
	s, err := g.openAudit(ctx, g.evidenceCheck())
	if err != nil {
		return err
	}
	defer s.Close()
	pub, verify, err := g.pinnedKey(o.pin)
	if err != nil {
		return err
	}
	// The ledger is replayed following the chain of directory keys from
	// the genesis key to this home's key; a pinned key must be one of it.
	rep, err := s.VerifyReport(ctx, pub.Fingerprint, verify)
	head := rep.Head
	var chain []directory.ChainKey
	if err == nil {
		chain, err = pinnedChain(ctx, s, o.pin)
	}
	if err == nil && o.wantHead != "" {
		err = checkHead(ctx, s, o.wantHead)
	}
	if err == nil {
		err = digest.CheckAnnounced(ctx, s) // rollback evidence
	}
	if err == nil {
		err = g.verifyOutbox(ctx, s)
	}
	if err == nil {
		err = g.verifyPending(ctx, s)
	}
	if directory.IsVerifyError(err) && g.json {
		if jerr := g.printJSON(map[string]any{"ok": false, "problem": err.Error()}); jerr != nil {
			return jerr
		}
		return err
	}
	if err != nil {
		return err
	}
	// Entries erased under data-protection law (contact erase), which
	// the replay found covered by their erasure: named, not tampering.
	reds, err := s.Redactions(ctx)
	if err != nil {
		return err
	}
	unchecked := make([]string, len(rep.Unchecked))
	for i, u := range rep.Unchecked {
		unchecked[i] = u.Error()
	}
	if g.json {
		out := map[string]any{"ok": true, "serial": head.Serial, "head": head.Hash, "key": pub.Fingerprint,
			"key_expires": expiresText(pub.Expires, time.RFC3339), "key_chain": chain, "unchecked": unchecked}
		if len(reds) > 0 {
			redacted := make([]string, len(reds))
			for i, r := range reds {
				redacted[i] = r.String()
			}
			out["redacted"] = redacted
		}
		return g.printJSON(out)
	}
	for _, u := range unchecked {
		g.warnf("NOT CHECKED: %s: only that the key was registered is checked", u)
	}
	g.printf("ok %s\n", head)
	g.printf("directory key %s, %s\n", keys.GroupFingerprint(pub.Fingerprint), keyExpiryText(pub.Expires, g.now()))
	if len(chain) > 1 {
		// The chain, the current key last: each replaced by a rekey entry
		// signed by it and by the next.
		for _, k := range chain {
			until := "now"
			if k.Until != 0 {
				until = fmt.Sprintf("%d (rekey)", k.Until)
				if k.Revoked {
					until += ", revoked: " + k.Reason
				}
			}
			g.printf("key chain: %s entries %d to %s\n", keys.GroupFingerprint(k.Fingerprint), k.Since, until)
		}
	}
	for _, r := range reds {
		g.printf("%s\n", r)
	}
	return nil
}

// evidenceCheck is how verify and log --evidence -o re-check the
// evidence kept with ledger entries: with the directory's secret key,
// read only when a whole mail an older ccdir kept encrypted to it needs
// it (secretKey: key.passphrase_file), so that such a mail is checked
// too; on a copy without the secret key it cannot be.
func (g *globals) evidenceCheck() inbound.EvidenceCheck {
	open := sync.OnceValues(func() (*keys.Secret, error) {
		if _, err := os.Stat(g.path(keysDir, secretName)); err != nil {
			return nil, errors.New("this copy of the home has no directory secret key")
		}
		return g.secretKey()
	})
	return inbound.EvidenceCheck{Secret: open}
}

// pinnedKey is the directory key that verify (and log --evidence -o)
// checks the ledger with: the home's public key (verifyKey), the key now
// at the end of the directory's chain of keys, and its check of ledger
// signatures. A pin (--key) may name any key of the chain: the caller
// checks it with pinnedChain once the replay has followed the chain.
func (g *globals) pinnedKey(pin string) (*keys.Public, directory.VerifyFunc, error) {
	pub, err := g.verifyKey(pin)
	var mismatch *keyMismatchError
	if errors.As(err, &mismatch) {
		return nil, nil, &directory.VerifyError{Reason: err.Error()}
	}
	if err != nil {
		return nil, nil, err
	}
	v, err := directoryVerifier(pub, g.now())
	if err != nil {
		return nil, nil, fmt.Errorf("directory key %s: %w", g.path(keysDir, publicName), err)
	}
	return pub, v.Verify, nil
}

// pinnedChain is the directory's chain of keys (directory.Store.KeyChain)
// once a replay (Verify, CheckedAt) has followed it to the home's key,
// and checks that the key pinned with --key, if any, is one of it,
// whichever: the chain from it to the key now was checked link by link.
func pinnedChain(ctx context.Context, s *directory.Store, pin string) ([]directory.ChainKey, error) {
	chain, err := s.KeyChain(ctx)
	if err != nil || pin == "" {
		return chain, err
	}
	want := strings.ToUpper(strings.ReplaceAll(pin, " ", ""))
	var fprs []string
	for _, k := range chain {
		if k.Fingerprint == want {
			return chain, nil
		}
		fprs = append(fprs, k.Fingerprint)
	}
	if len(chain) == 1 {
		return nil, &directory.VerifyError{Reason: fmt.Sprintf("the directory key is %s, not the pinned %s", chain[0].Fingerprint, pin)}
	}
	return nil, &directory.VerifyError{Reason: fmt.Sprintf("the pinned key %s is not one of the directory's keys (%s)", pin, strings.Join(fprs, " → "))}
}

// verifyKey reads the directory's public key for verify. With the secret
// key beside it, the two must match (publicKey); an auditor's copy of a
// home has no secret key, and then the key must be pinned with --key.
func (g *globals) verifyKey(pin string) (*keys.Public, error) {
	_, err := os.Stat(g.path(keysDir, secretName))
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return g.publicKey()
	}
	if pin == "" {
		return nil, withHint(fmt.Errorf("%s has no directory secret key to check the public key against", g.home),
			"pin the directory key you know from outside the home: ccdir verify --key FINGERPRINT")
	}
	b, err := os.ReadFile(g.path(keysDir, publicName))
	if err != nil {
		return nil, fmt.Errorf("directory public key: %w", err)
	}
	p, err := keys.ParsePublicOne(b)
	if err != nil {
		return nil, fmt.Errorf("directory public key %s: %w", g.path(keysDir, publicName), err)
	}
	return p, nil
}

// verifyOutbox reports, as tampering (a *directory.VerifyError, exit 3),
// the queued messages that fail authentication with the outbox key:
// written into the database by someone without keys/outbox.key (or
// queued by a ccdir older than outbox keys). They are never sent; outbox
// flush marks them failed. An auditor's copy without the outbox key, or a
// home whose outbox is not migrated yet, gets a warning that the outbox
// was not checked.
func (g *globals) verifyOutbox(ctx context.Context, s *directory.Store) error {
	k, err := readOutboxKey(g.path(keysDir, outboxKeyName))
	if errors.Is(err, fs.ErrNotExist) {
		// An auditor's copy holds no keys but the public one: nothing to
		// say. A home with its secret key but no outbox key is odd.
		if _, serr := os.Stat(g.path(keysDir, secretName)); serr == nil {
			g.warnf("the outbox was not checked: %s has no outbox key", g.path(keysDir))
		}
		return nil
	}
	if err != nil {
		return err
	}
	ob, err := outbox.Open(ctx, s.DB())
	if err != nil {
		g.warnf("the outbox was not checked: %v", err)
		return nil
	}
	ob.Key = k
	bad, err := ob.Unauthentic(ctx)
	if err != nil || len(bad) == 0 {
		return err
	}
	r := bad[0]
	return &directory.VerifyError{Reason: fmt.Sprintf("OUTBOX TAMPERING: %s waiting in the outbox not made by this ccdir (outbox row fails authentication), the first message %d (%s %s from %s to %s): ccdir never sends them, and outbox flush marks them failed; mail queued by a ccdir older than outbox keys is refused too",
		plural(len(bad), "message"), r.ID, r.Kind, r.Ref, r.From, r.To)}
}

// verifyPending reports, as tampering (a *directory.VerifyError, exit
// 3), the waiting pending changes whose rows fail authentication with
// the outbox key (liveness.Tampered): written or changed in the
// database by someone without keys/outbox.key, or made by a build
// older than their MAC, or decided per keys/pending-decided though
// their rows say they wait (an earlier copy put back). They are never
// applied. Without the outbox key
// (an auditor's copy) they are not checked, as the outbox is not.
func (g *globals) verifyPending(ctx context.Context, s *directory.Store) error {
	k, err := readOutboxKey(g.path(keysDir, outboxKeyName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // said by verifyOutbox
	}
	if err != nil {
		return err
	}
	bad, err := liveness.Tampered(ctx, s.DB(), liveness.Auth{Secret: k, Decisions: g.decisions(k)}, false)
	if err != nil {
		// The outbox key is here, so the record of decisions is too:
		// one that cannot be read is a problem, not a skipped check.
		return &directory.VerifyError{Reason: fmt.Sprintf("the pending changes could not be checked: %v", err)}
	}
	if len(bad) == 0 {
		return nil
	}
	ids := make([]string, len(bad))
	for i, p := range bad {
		ids[i] = p.ID
	}
	return &directory.VerifyError{Reason: fmt.Sprintf("PENDING CHANGE TAMPERING: %s waiting whose row fails authentication (not written by this ccdir, or changed since, or decided per the home's record of decisions %s: a row put back from an earlier copy, or a decision whose transaction failed after it was recorded): %s; ccdir never applies or proves them: discard each with ccdir pending cancel ID --tampered",
		plural(len(bad), "change"), g.path(keysDir, decidedName), strings.Join(ids, ", "))}
}

// checkHead makes sure ledger entry SERIAL still has hash HASH.
func checkHead(ctx context.Context, s *directory.Store, want string) error {
	h, err := parseHead("--head", want)
	if err != nil {
		return err
	}
	serial, hash := h.Serial, h.Hash
	var got string
	err = s.Log(ctx, serial, func(e *directory.Entry) error {
		got = e.Hash
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	switch {
	case got == "":
		return &directory.VerifyError{Seq: serial, Reason: "the published head is not in the ledger (it was cut back)"}
	case !strings.EqualFold(got, hash):
		return &directory.VerifyError{Seq: serial, Reason: fmt.Sprintf("hash %.16s… differs from the published %.16s…: the ledger was rewritten", got, hash)}
	}
	return nil
}

var errStop = errors.New("stop")

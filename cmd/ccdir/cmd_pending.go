package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/liveness"
)

func newPendingCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pending",
		Short: "See and decide the guarded key and email changes that wait (changes.delay)",
		Long: `A change of a contact's key or email that is not proven at once waits for
changes.delay before it takes effect: a KEY-ROTATE signed by the old key
alone, an email change by mail, or one made by the operator (contact update
--email, --key --replace, key import --replace) without --confirmed. It is
announced at once, with its change id, to the contact's old address and key,
its new ones and its ccTLDs' other contacts; a signed VETO of the id by the
old key or an admin contact of the ccTLD, or pending cancel, stops it. When
it is due, the daily ccdir ping send or ccdir digest send applies it, as a
ledger entry of the operator who runs it, whose evidence tells its story; a
key change asked for by mail that still waits for the proof of possession
of the new key (an answer to the challenge encrypted to it) then expires
instead, and one whose contact changed its address or key meanwhile is
superseded, and so is one asked for by mail whose asking key is revoked or
unusable by then, or whose contact has no active ccTLD left. Each of these is
announced like the change itself. Every change's row is authenticated with
keys/outbox.key, and every decision is recorded in keys/pending-decided
before it is kept: a row written or changed in the database, or put back
from an earlier copy after its change was decided, is never applied,
proven or decided (PENDING CHANGE TAMPERING; ccdir verify fails on it);
pending cancel ID --tampered discards it.`,
	}
	cmd.AddCommand(newPendingListCmd(g), newPendingApproveCmd(g), newPendingCancelCmd(g))
	return cmd
}

type pendingListOptions struct{ all bool }

func newPendingListCmd(g *globals) *cobra.Command {
	var o pendingListOptions
	cmd := &cobra.Command{
		Use:   "list [--all] [--json]",
		Short: "List the changes that wait (--all: every change, decided ones too)",
		Long: `Lists the pending key and email changes that wait: id, contact, kind, old
and new value, who asked, when, when it is due, whether the new key's
possession is proven (a key change asked for by mail) and its state. --all
lists the decided ones too: applied, vetoed, cancelled, expired, superseded.

EXIT STATUS
  0 listed, 1 error, 2 usage`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPendingList(cmd.Context(), o, g)
		},
	}
	cmd.Flags().BoolVar(&o.all, "all", false, "every change, decided ones too")
	return cmd
}

type pendingApproveOptions struct {
	confirmed    string
	confirmedSet bool
}

func newPendingApproveCmd(g *globals) *cobra.Command {
	var o pendingApproveOptions
	cmd := &cobra.Command{
		Use:   "approve ID [--confirmed HOW]",
		Short: "Apply a waiting change now, before it is due",
		Long: `Applies the waiting change ID now, as a ledger entry of the operator whose
evidence tells its story (asked by whom and when, approved before its due
time) and keeps the signed mail that asked for it, if any. A key change
asked for by mail whose new key's possession is not proven yet is refused
unless --confirmed says how the operator checked the key with its owner
(for instance "phone call to +351 21 234 5678 on 2026-12-03"). A contact
whose address or key changed since the change was asked for supersedes it:
nothing is applied. Announced like every change.

EXIT STATUS
  0 applied (or superseded, said so), 1 refused (unknown or decided id,
  proof missing; nothing changed), 2 usage`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.confirmedSet = cmd.Flags().Changed("confirmed")
			return runPendingApprove(cmd.Context(), o, g, args[0])
		},
	}
	cmd.Flags().StringVar(&o.confirmed, "confirmed", "", "how the operator checked the new key with its owner (needed for an unproven key change)")
	return cmd
}

func newPendingCancelCmd(g *globals) *cobra.Command {
	var tampered bool
	cmd := &cobra.Command{
		Use:   "cancel ID [--tampered]",
		Short: "Stop a waiting change",
		Long: `Stops the waiting change ID: it is never applied. Announced to the contact's
old and new address and key and its ccTLDs' other contacts.

A change whose row fails authentication (PENDING CHANGE TAMPERING: it was
not written by this ccdir, or was changed since) is never applied, and
blocks another change of its kind for the contact. --tampered discards
it: the row is marked cancelled, unread, and nothing is announced, since
nothing of such a row (its addresses, its key) can be trusted. Find out
first who could write the database (ccdir verify).

EXIT STATUS
  0 cancelled, 1 refused (unknown or decided id, --tampered for an
  authentic change, a tampered change without it; nothing changed), 2 usage`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPendingCancel(cmd.Context(), g, args[0], tampered)
		},
	}
	cmd.Flags().BoolVar(&tampered, "tampered", false, "discard a change whose row fails authentication, unread and unannounced")
	return cmd
}

// decidedName is the file, in keys/, of the home's record of decided
// pending changes (liveness.Decisions): appended, synced, by every
// decision before its transaction commits, so that an earlier copy of a
// change's row put back in the database (a backup restored) cannot
// revive a change decided since. Like outbox.key, it is the home's,
// not the database's.
const decidedName = "pending-decided"

// decisions is the home's record of decided pending changes, under the
// outbox key k: one for the run, whose decisions mutateWith commits.
func (g *globals) decisions(k []byte) *liveness.Decisions {
	if g.decided == nil {
		g.decided = &liveness.Decisions{Path: g.path(keysDir, decidedName), Secret: k, Warn: g.warnf}
	}
	return g.decided
}

// pendingAuth is how pending changes are authenticated: the outbox key
// (made if the home has none) and the home's record of decisions.
func (g *globals) pendingAuth() (liveness.Auth, error) {
	k, err := g.outboxKey()
	if err != nil {
		return liveness.Auth{}, err
	}
	return liveness.Auth{Secret: k, Decisions: g.decisions(k)}, nil
}

// maxConfirmed is the longest --confirmed, in characters.
const maxConfirmed = 160

// normalizeConfirmed checks and normalizes how the operator confirmed a
// change (--confirmed): by the rules of names (NFC, one space for every
// run of white space, no control, invisible or bidi characters), at
// most maxConfirmed characters; unlike a name it may start with "+" (a
// phone number).
func normalizeConfirmed(how string) (string, error) {
	const prefix = "confirmed "
	n, err := directory.NormalizeName(prefix+how, "--confirmed")
	if err == nil {
		n = strings.TrimPrefix(n, prefix)
		if n == "" || n == strings.TrimSpace(prefix) {
			err = errors.New("empty")
		}
	}
	if err == nil && utf8.RuneCountInString(n) > maxConfirmed {
		err = fmt.Errorf("longer than %d characters", maxConfirmed)
	}
	if err != nil {
		var fe *directory.FieldError
		if errors.As(err, &fe) {
			err = fe.Err
		}
		return "", usagef("--confirmed: %v; say how the change was checked with the contact, e.g. --confirmed \"phone call to +351 21 234 5678 on 2026-12-03\"", err)
	}
	return n, nil
}

// confirmedEvidence is the evidence of a change the operator made at
// once with --confirmed.
func confirmedEvidence(how string) []byte { return []byte("confirmed by the operator: " + how + "\n") }

// proposeChange asks, in tx, for the change of c's key (newKey) or email
// (newEmail) as the operator: a pending change due after changes.delay,
// announced with tx's other changes (notes). It returns the report line.
func (g *globals) proposeChange(ctx context.Context, tx *directory.Tx, notes *txNotes, c directory.Contact, newEmail string, newKey *directory.Key) (string, error) {
	now := g.now()
	p := liveness.Pending{ContactID: c.ID, Email: c.Email, Kind: liveness.ChangeEmail, NewEmail: newEmail,
		Actor: notes.actor, Due: now.Add(g.duration("changes.delay"))}
	if c.Key != nil {
		p.Fingerprint = c.Key.Fingerprint
	}
	if newKey != nil {
		p.Kind, p.NewKey = liveness.ChangeKey, newKey
	}
	if notes.dryRun {
		// Made at once, to be rolled back: the directory's checks of it.
		var err error
		if newKey != nil {
			_, err = tx.SetKey(c.Email, newKey)
		} else {
			_, err = tx.UpdateContact(c.Email, func(c *directory.Contact) error { c.Email = newEmail; return nil })
		}
		if errors.Is(err, directory.ErrUnchanged) {
			err = nil
		}
		return "", err
	}
	auth, err := g.pendingAuth()
	if err != nil {
		return "", err
	}
	if err := liveness.Propose(ctx, tx.SQL(), auth, &p, now); err != nil {
		var pe *liveness.PendingError
		if errors.As(err, &pe) && errors.Is(err, liveness.ErrChangeWaits) {
			return "", withHint(fmt.Errorf("%s: %w", c.Email, err),
				"decide it first (ccdir pending approve %s, or ccdir pending cancel %s), or make this change at once with --confirmed HOW", pe.ID, pe.ID)
		}
		if errors.As(err, &pe) && errors.Is(err, liveness.ErrTampered) {
			return "", withHint(fmt.Errorf("%s: %w", c.Email, err),
				"the tampered change is never applied; check who can write the database, run ccdir verify, then discard it with: ccdir pending cancel %s --tampered; or make this change at once with --confirmed HOW", pe.ID)
		}
		return "", err
	}
	notes.add(p, c, p.Line())
	return fmt.Sprintf("change %s of %s waits until %s (changes.delay): %s; apply it now with: ccdir pending approve %s",
		p.ID, c.Email, p.Due.UTC().Format("2006-01-02 15:04 UTC"), p.What(), p.ID), nil
}

// pendingJSON is one change in pending list --json and in the reports of
// approve, cancel and the daily runs.
type pendingJSON struct {
	ID             string  `json:"id"`
	Contact        string  `json:"contact"`
	Kind           string  `json:"kind"`
	Old            string  `json:"old"`
	New            string  `json:"new"`
	NewFingerprint string  `json:"new_fingerprint,omitempty"`
	Actor          string  `json:"asked_by"`
	Requested      string  `json:"asked"`
	Due            string  `json:"due"`
	ProofNeeded    bool    `json:"proof_needed"`
	Proven         *string `json:"proven"`
	State          string  `json:"state"`
	Decided        *string `json:"decided"`
	DecidedBy      string  `json:"decided_by,omitempty"`
	Reason         string  `json:"reason,omitempty"`
	// Tampered: the row fails authentication (pending list only).
	Tampered bool `json:"tampered,omitempty"`
}

func toPendingJSON(p liveness.Pending) pendingJSON {
	j := pendingJSON{ID: p.ID, Contact: p.Email, Kind: p.Kind, Old: p.Old(), New: p.NewEmail, NewFingerprint: p.NewFingerprint,
		Actor: p.Actor, Requested: rfc3339(p.Requested), Due: rfc3339(p.Due), ProofNeeded: p.ProofHash != "",
		State: p.State, DecidedBy: p.DecidedBy, Reason: p.Reason}
	if p.Kind == liveness.ChangeKey {
		j.New = p.NewFingerprint
	}
	if !p.Proven.IsZero() {
		v := rfc3339(p.Proven)
		j.Proven = &v
	}
	if !p.Decided.IsZero() {
		v := rfc3339(p.Decided)
		j.Decided = &v
	}
	return j
}

func runPendingList(ctx context.Context, o pendingListOptions, g *globals) error {
	s, err := g.openOps(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	ps, err := liveness.ListPending(ctx, s.DB(), o.all)
	if err != nil {
		return err
	}
	// Rows that fail authentication are flagged: never applied, proven
	// or decided (liveness.Pending.Authentic).
	bad, err := g.tamperedPending(ctx, s.DB(), o.all)
	if err != nil {
		return err
	}
	tampered := 0
	flag := func(p liveness.Pending) bool {
		if bad[p.ID] {
			tampered++
		}
		return bad[p.ID]
	}
	defer func() {
		if tampered > 0 {
			g.warnf("%s fail authentication (TAMPERED: not written by this ccdir, or changed in %s since): never applied, proven or decided; check who can write it, and run ccdir verify", plural(tampered, "change"), g.path(dbName))
		}
	}()
	if g.json {
		out := make([]pendingJSON, len(ps))
		for i, p := range ps {
			out[i] = toPendingJSON(p)
			out[i].Tampered = flag(p)
		}
		return g.printJSON(out)
	}
	if len(ps) == 0 {
		if o.all {
			g.printf("no pending change yet\n")
		} else {
			g.printf("no change waits\n")
		}
		return nil
	}
	const at = "2006-01-02 15:04"
	t := &table{}
	t.add("ID", "CONTACT", "KIND", "OLD", "NEW", "ASKED BY", "ASKED", "DUE", "PROVEN", "STATE")
	for _, p := range ps {
		newer := p.NewEmail
		if p.Kind == liveness.ChangeKey {
			newer = p.NewFingerprint
		}
		proven := "-"
		switch {
		case p.ProofHash == "":
		case p.Proven.IsZero():
			proven = "no"
		default:
			proven = p.Proven.UTC().Format(at)
		}
		state := p.State
		if flag(p) {
			state += " TAMPERED"
		}
		t.add(p.ID, p.Email, p.Kind, p.Old(), newer, p.Actor, p.Requested.UTC().Format(at), p.Due.UTC().Format(at), proven, state)
	}
	if err := t.write(g.stdout); err != nil {
		return err
	}
	g.printf("%s\n", plural(len(ps), "change"))
	return nil
}

// tamperedPending is the set of the ids of the waiting changes (with
// all, of every change) whose
// rows fail authentication (liveness.Tampered: their MAC, or the home's
// record of decisions has them decided); empty without an outbox key
// (an auditor's copy of the database: nothing to check with).
func (g *globals) tamperedPending(ctx context.Context, q liveness.Queryer, all bool) (map[string]bool, error) {
	bad := map[string]bool{}
	secret, err := readOutboxKey(g.path(keysDir, outboxKeyName))
	if errors.Is(err, fs.ErrNotExist) {
		return bad, nil
	}
	if err != nil {
		return nil, err
	}
	ts, err := liveness.Tampered(ctx, q, liveness.Auth{Secret: secret, Decisions: g.decisions(secret)}, all)
	if err != nil {
		return nil, err
	}
	for _, p := range ts {
		bad[p.ID] = true
	}
	return bad, nil
}

// pendingRefusal adds the hint for a refused decision on a change.
func pendingRefusal(err error) error {
	var pe *liveness.PendingError
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Err {
	case liveness.ErrChangeUnknown:
		return withHint(err, "see the changes with: ccdir pending list --all")
	case liveness.ErrChangeDecided:
		return withHint(err, "see it with: ccdir pending list --all")
	case liveness.ErrProofMissing:
		return withHint(err, "check the new key with its owner, then: ccdir pending approve %s --confirmed HOW", pe.ID)
	case liveness.ErrTampered:
		return withHint(err, "check who can write the database, and run ccdir verify; then discard it with: ccdir pending cancel %s --tampered", pe.ID)
	}
	return err
}

// checkChangeID refuses an argument that cannot be a change id, before
// anything is opened.
func checkChangeID(id string) error {
	if !liveness.ValidChangeID(id) {
		return withHint(&liveness.PendingError{Err: liveness.ErrChangeUnknown, ID: id}, "a change id is chg- and 10 letters or digits; see them with: ccdir pending list --all")
	}
	return nil
}

// readPending reads the change id for a decision (the evidence of its
// ledger entry is made from it before the transaction starts, which
// checks that its row is still this one: applyPending).
func (g *globals) readPending(ctx context.Context, id string) (liveness.Pending, error) {
	if err := checkChangeID(id); err != nil {
		return liveness.Pending{}, err
	}
	s, err := g.openOps(ctx)
	if err != nil {
		return liveness.Pending{}, err
	}
	defer s.Close()
	p, err := liveness.GetPending(ctx, s.DB(), id)
	if err == nil && p.State != liveness.StateWaiting {
		err = &liveness.PendingError{Err: liveness.ErrChangeDecided, ID: p.ID, State: p.State, At: p.Decided}
	}
	return p, pendingRefusal(err)
}

// applyPending applies the waiting change p in its own transaction, as
// a ledger entry of the operator who runs ccdir whose evidence tells p's
// story (liveness.ApplyEvidence; how: --confirmed), and announces what
// became of it. It returns p as it left it. p is a copy read before the
// transaction, which the evidence is made of: Apply refuses it when the
// row, as authenticated in the transaction, is not that copy
// (liveness.ApplyOptions.Read), and the notices go to the contact of
// that row (liveness.Waiting). A row that changed meanwhile (a proof
// recorded) is read again and applied once more.
func (g *globals) applyPending(ctx context.Context, p liveness.Pending, how string, quiet bool) (liveness.Pending, error) {
	got, err := g.applyPendingOnce(ctx, p, how, quiet)
	if !errors.Is(err, liveness.ErrChangeMoved) {
		return got, err
	}
	if p, err = g.readPending(ctx, p.ID); err != nil {
		return p, err
	}
	return g.applyPendingOnce(ctx, p, how, quiet)
}

func (g *globals) applyPendingOnce(ctx context.Context, p liveness.Pending, how string, quiet bool) (liveness.Pending, error) {
	now := g.now()
	secret, err := g.pendingAuth()
	if err != nil {
		return p, err
	}
	var got liveness.Pending
	err = g.mutateWith(ctx, mutateOptions{evidence: liveness.ApplyEvidence(p, how, now), daily: quiet, quiet: quiet}, func(tx *directory.Tx, notes *txNotes) (string, error) {
		cur, err := liveness.Waiting(ctx, tx.SQL(), secret, p.ID)
		if err != nil {
			return "", pendingRefusal(err)
		}
		c, err := pendingContact(tx, cur) // before Apply changes it
		if err != nil {
			return "", err
		}
		got, err = liveness.Apply(ctx, tx, p.ID, liveness.ApplyOptions{Auth: secret, By: notes.actor, Confirmed: how != "", Evidence: g.evidenceCheck().Verify, Read: &p}, now)
		if err != nil {
			return "", pendingRefusal(err)
		}
		notes.add(got, c, got.Line())
		return pendingResult(got), nil
	})
	return got, err
}

// pendingContact is the contact a pending change concerns, for its
// notices: found by its id (Pending.ContactID), as mailcmd finds it,
// not by the address it had, which another contact may have now. A
// contact removed since is a contact without a key at the address the
// change recorded: nothing can be encrypted to it, so it is not told
// there (the command warns "no notice of the change to …: no key"); only a key change's
// new key is told, at that address. None of its ccTLDs' contacts is
// told, nor whoever has its old address now.
func pendingContact(tx *directory.Tx, p liveness.Pending) (directory.Contact, error) {
	c, err := tx.ContactByID(p.ContactID)
	if errors.Is(err, directory.ErrNotFound) {
		return directory.Contact{ID: p.ContactID, Email: p.Email}, nil
	}
	return c, err
}

// pendingResult is the report line of what became of a change.
func pendingResult(p liveness.Pending) string {
	switch p.State {
	case liveness.StateApplied:
		return fmt.Sprintf("applied change %s: %s of %s", p.ID, p.What(), p.Email)
	case liveness.StateCancelled:
		return fmt.Sprintf("cancelled change %s: %s of %s", p.ID, p.What(), p.Email)
	}
	return fmt.Sprintf("change %s %s: %s; nothing applied", p.ID, p.State, p.Reason)
}

func runPendingApprove(ctx context.Context, o pendingApproveOptions, g *globals, id string) error {
	if o.confirmedSet {
		how, err := normalizeConfirmed(o.confirmed)
		if err != nil {
			return err
		}
		o.confirmed = how
	}
	p, err := g.readPending(ctx, id)
	if err != nil {
		return err
	}
	_, err = g.applyPending(ctx, p, o.confirmed, false)
	return err
}

func runPendingCancel(ctx context.Context, g *globals, id string, tampered bool) error {
	if tampered {
		return runPendingDiscard(ctx, g, id)
	}
	if err := checkChangeID(id); err != nil {
		return err
	}
	secret, err := g.pendingAuth()
	if err != nil {
		return err
	}
	return g.mutateWith(ctx, mutateOptions{}, func(tx *directory.Tx, notes *txNotes) (string, error) {
		p, err := liveness.Cancel(ctx, tx.SQL(), secret, id, notes.actor, g.now())
		if err != nil {
			return "", pendingRefusal(err)
		}
		c, err := pendingContact(tx, p)
		if err != nil {
			return "", err
		}
		notes.add(p, c, p.Line())
		return pendingResult(p), nil
	})
}

// runPendingDiscard discards the waiting change id whose row fails
// authentication (liveness.Discard): no notice, since the row's
// addresses and keys are not to be trusted; the operator is told so.
func runPendingDiscard(ctx context.Context, g *globals, id string) error {
	if err := checkChangeID(id); err != nil {
		return err
	}
	secret, err := g.pendingAuth()
	if err != nil {
		return err
	}
	return g.mutateWith(ctx, mutateOptions{}, func(tx *directory.Tx, notes *txNotes) (string, error) {
		p, err := liveness.Discard(ctx, tx.SQL(), secret, id, notes.actor, g.now())
		if err != nil {
			var pe *liveness.PendingError
			if errors.As(err, &pe) && pe.Err == liveness.ErrNotTampered {
				return "", withHint(err, "cancel it without --tampered: ccdir pending cancel %s", id)
			}
			return "", pendingRefusal(err)
		}
		return fmt.Sprintf("discarded change %s, whose row failed authentication: nothing of it was applied or announced; check who can write the database", p.ID), nil
	})
}

// applyDue applies the pending changes that are due (the daily ping send
// and digest send, before they send, so that what they send carries the
// new state), each in its own transaction with its notices: a run that
// stops is finished by the next, and a change is applied once. A change
// refused for what its own row holds (its row fails authentication: a
// *liveness.PendingError with ErrTampered; or it cannot be read) is
// told on stderr and skipped, and the rest are applied; the command
// then does its other work and fails at the end (skippedChangesError,
// exit 1), as a refused outbox row does. dryRun lists them and applies
// nothing. It returns them as it left them (as they are, for dryRun).
func (g *globals) applyDue(ctx context.Context, dryRun bool) ([]liveness.Pending, error) {
	s, err := g.openOps(ctx)
	if err != nil {
		return nil, err
	}
	due, err := liveness.DueChanges(ctx, s.DB(), g.now())
	s.Close()
	if err != nil || len(due) == 0 || dryRun {
		return due, err
	}
	var out []liveness.Pending
	for _, p := range due {
		got, err := g.applyPending(ctx, p, "", true)
		var pe *liveness.PendingError
		switch {
		case errors.Is(err, liveness.ErrChangeDecided):
			continue // decided meanwhile (another run, a VETO)
		case errors.As(err, &pe) && pe.ID == p.ID:
			g.skippedChanges++
			g.logger().Printf("pending change %s not applied: %v", p.ID, err)
			continue
		case err != nil:
			return out, fmt.Errorf("pending change %s: %w", p.ID, err)
		}
		out = append(out, got)
	}
	return out, nil
}

// skippedChangesError is the error of a daily run that skipped due
// pending changes (applyDue), after its report; nil when it skipped
// none.
func (g *globals) skippedChangesError() error {
	if g.skippedChanges == 0 {
		return nil
	}
	return withHint(fmt.Errorf("%s not applied (see above)", plural(g.skippedChanges, "due pending change")),
		"a change whose row fails authentication was written or changed in %s by someone without keys/outbox.key, or put back after it was decided (keys/%s has it decided): it is never applied; check who can write it, run ccdir verify, then discard it with: ccdir pending cancel ID --tampered (ccdir pending list shows it TAMPERED), and ask for the change again if it is wanted", g.path(dbName), decidedName)
}

// reportDue prints what applyDue did (not for --json, where the
// changes are a field of the command's output).
func (g *globals) reportDue(ps []liveness.Pending, dryRun bool) {
	for _, p := range ps {
		if dryRun {
			g.printf("dry run: change %s is due (%s): %s of %s would be applied\n", p.ID, p.Due.UTC().Format(time.RFC3339), p.What(), p.Email)
			continue
		}
		g.printf("%s\n", pendingResult(p))
	}
}

func pendingJSONs(ps []liveness.Pending) []pendingJSON {
	if len(ps) == 0 {
		return nil
	}
	out := make([]pendingJSON, len(ps))
	for i, p := range ps {
		out[i] = toPendingJSON(p)
	}
	return out
}

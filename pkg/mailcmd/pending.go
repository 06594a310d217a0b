package mailcmd

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/liveness"
)

// Guarded key and email changes by mail (issue 11 item 3). A KEY-ROTATE
// signed by the registered key alone and every SET EMAIL are not made at
// once: they are pending changes (liveness.Propose) that wait
// Config.ChangeDelay, announced as requests to the contact at its old and
// new address or key and to the other contacts of its ccTLDs, so that
// the contact's own key or an admin of one of its ccTLDs can stop them
// with VETO. A pending key change is also applied only once the new key
// is proven: a challenge encrypted to it alone carries a token, answered
// with CONFIRM in a mail signed by the registered key.

const dueFormat = "2006-01-02 15:04 UTC"

// proposeKey makes the key change of me to k a pending change, with its
// possession challenge.
func (r *run) proposeKey(me *directory.Contact, k *directory.Key) (string, error) {
	if other := contactByFingerprint(r.view, k.Fingerprint); other != nil && other.Email != me.Email {
		return "", refuse("key %s is already registered to %s; every contact needs a key of its own", k.Fingerprint, other.Email)
	}
	if err := r.mayKeep(1); err != nil {
		return "", err
	}
	token, hash, err := liveness.NewProofToken(r.tokenSecret, r.rand)
	if err != nil {
		return "", err
	}
	p := r.pendingOf(me, liveness.ChangeKey)
	p.NewKey, p.ProofHash = k, hash
	if err := r.propose(&p); err != nil {
		return "", err
	}
	before := cloneContact(*me)
	r.proofs = append(r.proofs, proof{pending: p, contact: before, token: token})
	r.notices.AnnouncePending(&before, &p, nil, []string{p.Line()})
	if r.dry {
		return fmt.Sprintf("would be pending: the change of your key from %s to %s would wait until %s, a challenge would go to the new key, and it could be stopped with VETO",
			liveness.KeyText(before.Key), liveness.KeyText(k), p.Due.Format(dueFormat)), nil
	}
	return fmt.Sprintf(`pending: change %s, your key from %s
         to %s, takes effect at %s,
         only if you prove that you hold the new key, and unless it is vetoed before.
         A challenge goes to %s encrypted to the new key alone: answer its
         CONFIRM line in a mail signed by your current key %s.
         To stop the change: VETO %s (signed by your current key, or by an admin
         contact of %s). A KEY-ROTATE signed by both keys (gpg -u OLD -u NEW)
         takes effect at once.`,
		p.ID, liveness.KeyText(before.Key), liveness.KeyText(k), p.Due.Format(dueFormat), before.Email, before.Key.Fingerprint,
		p.ID, strings.Join(displayAll(liveness.RoleTLDs(&before, nil)), ", ")), nil
}

// setEmail makes the change of the sender's email a pending change.
func (r *run) setEmail(c *Command) (string, error) {
	me := r.self()
	switch {
	case c.Email == me.Email:
		return "", refuse("%s is your address already", c.Email)
	case r.find(c.Email) != nil:
		return "", refuse("%s is the address of another contact; every contact needs an address of its own", c.Email)
	}
	// The directory's own addresses, the bounce address and the
	// operator's: refused now as the change would be when applied.
	if err := r.tx.CheckOwnAddress(c.Email); err != nil {
		return "", err
	}
	if err := r.mayKeep(1); err != nil {
		return "", err
	}
	p := r.pendingOf(me, liveness.ChangeEmail)
	p.NewEmail = c.Email
	if err := r.propose(&p); err != nil {
		return "", err
	}
	before := cloneContact(*me)
	r.notices.AnnouncePending(&before, &p, nil, []string{p.Line()})
	if r.dry {
		return fmt.Sprintf("would be pending: the change of your email from %s to %s would wait until %s, and could be stopped with VETO",
			before.Email, c.Email, p.Due.Format(dueFormat)), nil
	}
	return fmt.Sprintf(`pending: change %s, your email from %s to %s,
         takes effect at %s unless it is vetoed before; a notice goes to
         both addresses. An email change by mail never takes effect at once.
         To stop it: VETO %s (signed by your key, or by an admin contact of %s).`,
		p.ID, before.Email, c.Email, p.Due.Format(dueFormat), p.ID, strings.Join(displayAll(liveness.RoleTLDs(&before, nil)), ", ")), nil
}

// pendingOf is a change of me asked for by this mail, of kind, due after
// Config.ChangeDelay.
func (r *run) pendingOf(me *directory.Contact, kind string) liveness.Pending {
	fpr := ""
	if me.Key != nil {
		fpr = me.Key.Fingerprint
	}
	return liveness.Pending{ContactID: me.ID, Email: me.Email, Fingerprint: fpr, Kind: kind,
		Actor: "member:" + r.a.Key.Fingerprint, Evidence: r.a.Evidence,
		Requested: r.now, Due: r.now.Add(r.cfg.ChangeDelay)}
}

// propose records p (liveness.Propose, which sets its id).
func (r *run) propose(p *liveness.Pending) error {
	err := liveness.Propose(r.ctx, r.tx.SQL(), r.auth, p, r.now)
	if err == nil {
		r.pending = append(r.pending, p.ID)
		return nil
	}
	return proposeError(err, p)
}

// supersede decides, in the mail's transaction, the waiting changes its
// changes so far made impossible (liveness.SupersedeWaiting: a
// KEY-ROTATE signed by both keys over a waiting change of the same
// contact, a contact removed with a change waiting), announces each to
// everyone told of it, at once, and returns what the reply says of
// them.
func (r *run) supersede() ([]string, error) {
	ss, err := liveness.SupersedeWaiting(r.ctx, r.tx, r.auth, "member:"+r.a.Key.Fingerprint, r.now)
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, s := range ss {
		c := cloneContact(s.Contact)
		r.notices.AnnouncePending(&c, &s.Pending, nil, []string{s.Pending.Line()})
		l := s.Pending.Line() + " (a notice goes to everyone told of it)"
		if r.dry {
			l = "would be: " + s.Pending.Line()
		}
		lines = append(lines, l)
	}
	return lines, nil
}

// veto stops the waiting change p (authorize decided that the sender
// may).
func (r *run) veto(change *liveness.Pending) (string, error) {
	p := *change
	who := contactByID(r.view, p.ContactID) // not nil: authorize found it
	if p.State != liveness.StateWaiting {
		return "", refuse("not vetoed: change %s %s", p.ID, decided(&p))
	}
	by := "member:" + r.a.Key.Fingerprint
	vp, err := liveness.Veto(r.ctx, r.tx.SQL(), r.auth, p.ID, by, r.now)
	if err != nil {
		return "", vetoError(err)
	}
	before := cloneContact(*who)
	r.notices.AnnouncePending(&before, &vp, nil, []string{vp.Line()})
	if r.dry {
		return fmt.Sprintf("would be vetoed: change %s (%s of %s) would not be made", p.ID, p.What(), p.Email), nil
	}
	return fmt.Sprintf("vetoed: change %s (%s of %s) will not be made; a notice goes to everyone told of it", p.ID, p.What(), p.Email), nil
}

// confirm records the proof of possession of the new key of the
// sender's pending key change p (authorize decided it is the sender's).
func (r *run) confirm(c *Command, change *liveness.Pending) (string, error) {
	p := *change
	switch {
	case p.Kind != liveness.ChangeKey:
		return "", refuse("not confirmed: change %s is an email change; only a key change is confirmed", p.ID)
	case p.State != liveness.StateWaiting:
		return "", refuse("not confirmed: change %s %s", p.ID, decided(&p))
	case !p.Proven.IsZero():
		return "", refuse("not confirmed: change %s was confirmed already, at %s; a token works once", p.ID, p.Proven.UTC().Format(dueFormat))
	case !strings.EqualFold(p.Fingerprint, r.a.Key.Fingerprint):
		return "", refuse("not confirmed: sign the CONFIRM with the key change %s replaces, %s", p.ID, p.Fingerprint)
	}
	if _, err := liveness.Prove(r.ctx, r.tx.SQL(), r.auth, p.ID, liveness.ProofHash(c.Token), r.now); err != nil {
		return "", proveError(err, &p)
	}
	verb := "confirmed"
	if r.dry {
		verb = "would be confirmed"
	}
	return fmt.Sprintf("%s: you hold the new key %s; change %s takes effect at %s unless it is vetoed before then",
		verb, fingerprintOf(p.NewKey), p.ID, p.Due.UTC().Format(dueFormat)), nil
}

// getPending reads the change c names; an unknown one is refused.
func (r *run) getPending(c *Command) (liveness.Pending, error) {
	p, err := liveness.GetPending(r.ctx, r.tx.SQL(), c.Change)
	if errors.Is(err, liveness.ErrChangeUnknown) {
		what := "not vetoed"
		if c.Verb == VerbConfirm {
			what = "not confirmed"
		}
		return p, refuse("%s: no change has the id %s; copy it from the notice or the challenge", what, c.Change)
	}
	return p, err
}

// contactByID is the contact id of view, or nil.
func contactByID(view *directory.Snapshot, id int64) *directory.Contact {
	for i := range view.Contacts {
		if view.Contacts[i].ID == id {
			return &view.Contacts[i]
		}
	}
	return nil
}

// decided says what became of a change that is no longer waiting.
func decided(p *liveness.Pending) string {
	at := p.Decided.UTC().Format(dueFormat)
	switch p.State {
	case liveness.StateApplied:
		return "was applied already, at " + at
	case liveness.StateVetoed:
		return "was vetoed already, at " + at
	case liveness.StateCancelled:
		return "was cancelled by the operator, at " + at
	case liveness.StateExpired:
		return "expired at " + at + " without the proof of its new key"
	case liveness.StateSuperseded:
		return "was superseded by another change, at " + at
	}
	return "is " + p.State
}

func fingerprintOf(k *directory.Key) string {
	if k == nil {
		return "none"
	}
	return k.Fingerprint
}

// proposeError, vetoError and proveError turn what liveness refuses into
// what the sender is told.
// tamperedRefusal is the refusal of a command on a change whose row
// fails authentication (liveness.ErrTampered): the member is told
// neutrally, the log (Result.Summary) gets the detail.
func tamperedRefusal(err error, format string, args ...any) error {
	if !errors.Is(err, liveness.ErrTampered) {
		return nil
	}
	return &refusal{msg: fmt.Sprintf(format, args...) + " cannot be decided by mail now; the operator has been told", detail: err}
}

func proposeError(err error, p *liveness.Pending) error {
	var pe *liveness.PendingError
	if !errors.As(err, &pe) {
		return err
	}
	if r := tamperedRefusal(err, "not done: your %s change", p.Kind); r != nil {
		return r
	}
	if errors.Is(err, liveness.ErrChangeWaits) {
		return refuse("not done: your %s change %s waits already, until %s; VETO it first to ask for another", p.Kind, pe.ID, pe.At.UTC().Format(dueFormat))
	}
	return refuse("not done: %v", pe)
}

func vetoError(err error) error {
	var pe *liveness.PendingError
	if errors.As(err, &pe) {
		if r := tamperedRefusal(err, "not vetoed: change %s", pe.ID); r != nil {
			return r
		}
		return refuse("not vetoed: %v", pe)
	}
	return err
}

func proveError(err error, p *liveness.Pending) error {
	var pe *liveness.PendingError
	if !errors.As(err, &pe) {
		return err
	}
	if r := tamperedRefusal(err, "not confirmed: change %s", p.ID); r != nil {
		return r
	}
	switch {
	case errors.Is(err, liveness.ErrProofWrong):
		return refuse("not confirmed: this is not the token of change %s; copy the CONFIRM line exactly from the challenge sent to the new key", p.ID)
	case errors.Is(err, liveness.ErrProofDone):
		return refuse("not confirmed: change %s was confirmed already, at %s; a token works once", p.ID, pe.At.UTC().Format(dueFormat))
	case errors.Is(err, liveness.ErrProofMissing):
		return refuse("not confirmed: change %s was due at %s; too late to prove its key, ask for the change again", p.ID, pe.At.UTC().Format(dueFormat))
	}
	return refuse("not confirmed: %v", pe)
}

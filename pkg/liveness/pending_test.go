package liveness

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys/keystest"
)

// contact reads a contact of the fixture.
func (f *fixture) contact(email string) directory.Contact {
	f.t.Helper()
	c, err := f.store.Contact(f.ctx, email)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// sqlTx runs fn in one transaction of the operational tables, committed
// when fn returns nil.
func (f *fixture) sqlTx(fn func(tx *sql.Tx) error) error {
	f.t.Helper()
	tx, err := f.store.DB().BeginTx(f.ctx, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	defer tx.Rollback()
	defer f.decided.Forget(tx)
	if err := fn(tx); err != nil {
		return err
	}
	if err := f.decided.Commit(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// newKeys counts the new keys made, so that each is another.
var newKeys int

// keyChange is a key change of email to a new key, due after delay.
func (f *fixture) keyChange(email string, delay time.Duration, proof string) *Pending {
	f.t.Helper()
	c := f.contact(email)
	newKeys++
	sec := keystest.NewSecret(f.t, fmt.Sprintf("%s new %d", c.Name, newKeys), email)
	p := &Pending{ContactID: c.ID, Email: c.Email, Fingerprint: c.Key.Fingerprint, Kind: ChangeKey,
		NewKey: dirKey(f.t, sec.Public()), Actor: "member:" + c.Key.Fingerprint, Evidence: []byte("the signed mail\n"),
		Due: f.now().Add(delay)}
	if proof != "" {
		p.ProofHash = ProofHash(proof)
	}
	return p
}

func (f *fixture) propose(p *Pending) error {
	f.t.Helper()
	return f.sqlTx(func(tx *sql.Tx) error { return Propose(f.ctx, tx, f.auth(), p, f.now()) })
}

// apply applies id in its own Update by the operator Rita, with
// ApplyEvidence, as the daily run does.
func (f *fixture) apply(id string, confirmed bool) (Pending, []directory.Entry, error) {
	f.t.Helper()
	p, err := GetPending(f.ctx, f.store.DB(), id)
	if err != nil {
		return p, nil, err
	}
	actor, err := directory.OperatorActor("Rita Lopes")
	if err != nil {
		f.t.Fatal(err)
	}
	actor.Evidence = ApplyEvidence(p, "", f.now())
	var got Pending
	entries, err := f.store.Update(f.ctx, actor, func(t *directory.Tx) error {
		var err error
		defer f.decided.Forget(t.SQL())
		got, err = Apply(f.ctx, t, id, ApplyOptions{Auth: f.auth(), By: actor.Name, Confirmed: confirmed, Evidence: testEvidence}, f.now())
		if err == nil {
			err = f.decided.Commit(t.SQL())
		}
		return err
	})
	return got, entries, err
}

// testEvidence stands for inbound.VerifyEvidence in these tests: the
// mail of keyChange verifies, any other does not.
func testEvidence(evidence []byte, armored string, at time.Time) error {
	if string(evidence) != "the signed mail\n" || armored == "" {
		return errors.New("signature by the wrong key")
	}
	return nil
}

func (f *fixture) verify() {
	f.t.Helper()
	if _, err := f.store.Verify(f.ctx, f.dir.Fingerprint(), f.dir.Verify); err != nil {
		f.t.Fatalf("verify: %v", err)
	}
}

func (f *fixture) state(id string) Pending {
	f.t.Helper()
	p, err := GetPending(f.ctx, f.store.DB(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

func pendingErr(t *testing.T, err, want error) {
	t.Helper()
	var pe *PendingError
	if !errors.As(err, &pe) || !errors.Is(err, want) {
		t.Fatalf("err = %v, want a *PendingError %v", err, want)
	}
}

// A proposed change is recorded as asked, listed while it waits, due
// after its delay; a second change of the same kind for the contact is
// refused while it waits, one of the other kind is not.
func TestProposeListDue(t *testing.T) {
	f := newFixture(t)
	p := f.keyChange("ana@dns.pt", DefaultDelay, "")
	if err := f.propose(p); err != nil {
		t.Fatal(err)
	}
	if !ValidChangeID(p.ID) || p.State != StateWaiting || !p.Requested.Equal(f.now()) {
		t.Fatalf("proposed %+v", p)
	}
	got := f.state(p.ID)
	if got.NewKey == nil || got.NewKey.Armored != p.NewKey.Armored || got.NewFingerprint != p.NewKey.Fingerprint ||
		got.Fingerprint != p.Fingerprint || got.Email != "ana@dns.pt" || !bytes.Equal(got.Evidence, p.Evidence) ||
		!got.Due.Equal(p.Due) || got.ProofHash != "" || got.NeedsProof() || got.Actor != p.Actor {
		t.Fatalf("read back %+v\nwant %+v", got, p)
	}

	again := f.keyChange("ana@dns.pt", DefaultDelay, "")
	err := f.propose(again)
	pendingErr(t, err, ErrChangeWaits)
	if !strings.Contains(err.Error(), p.ID) || again.ID != "" {
		t.Fatalf("double pending: %v, id %q", err, again.ID)
	}
	ana := f.contact("ana@dns.pt")
	email := &Pending{ContactID: ana.ID, Email: ana.Email, Fingerprint: ana.Key.Fingerprint, Kind: ChangeEmail,
		NewEmail: "Ana@Example.PT", Actor: "operator:Rita Lopes", Due: f.now().Add(time.Hour)}
	if err := f.propose(email); err != nil {
		t.Fatal(err)
	}
	if email.NewEmail != "ana@example.pt" {
		t.Errorf("new email %q, want it normalized", email.NewEmail)
	}
	ls, err := ListPending(f.ctx, f.store.DB(), false)
	if err != nil || len(ls) != 2 || ls[0].ID != p.ID || ls[1].ID != email.ID {
		t.Fatalf("ListPending = %v, %v", ls, err)
	}
	if due, err := DueChanges(f.ctx, f.store.DB(), f.now()); err != nil || len(due) != 0 {
		t.Fatalf("due now: %v, %v", due, err)
	}
	f.advance(time.Hour)
	if due, err := DueChanges(f.ctx, f.store.DB(), f.now()); err != nil || len(due) != 1 || due[0].ID != email.ID {
		t.Fatalf("due after an hour: %v, %v", due, err)
	}
	f.advance(DefaultDelay)
	if due, err := DueChanges(f.ctx, f.store.DB(), f.now()); err != nil || len(due) != 2 || due[0].ID != email.ID || due[1].ID != p.ID {
		t.Fatalf("due after the delay: %v, %v", due, err)
	}

	// Changes that are not valid.
	for name, bad := range map[string]func(p *Pending){
		"no due":       func(p *Pending) { p.Due = time.Time{} },
		"no actor":     func(p *Pending) { p.Actor = "" },
		"no contact":   func(p *Pending) { p.ContactID = 0 },
		"same key":     func(p *Pending) { p.NewKey.Fingerprint = p.Fingerprint },
		"no key":       func(p *Pending) { p.NewKey = nil },
		"kind":         func(p *Pending) { p.Kind = "name" },
		"email w/ key": func(p *Pending) { p.Kind, p.NewEmail = ChangeEmail, "x@example.org" },
		"bad email":    func(p *Pending) { p.Kind, p.NewKey, p.NewEmail = ChangeEmail, nil, "not an address" },
		"same email":   func(p *Pending) { p.Kind, p.NewKey, p.NewEmail = ChangeEmail, nil, p.Email },
	} {
		q := f.keyChange("bob@dns.pt", time.Hour, "")
		bad(q)
		if err := f.propose(q); !errors.Is(err, ErrChangeNotValid) {
			t.Errorf("%s: %v, want ErrChangeNotValid", name, err)
		}
	}
	if ls, _ := ListPending(f.ctx, f.store.DB(), true); len(ls) != 2 {
		t.Errorf("%d changes after the refusals, want 2", len(ls))
	}
}

// Veto and Cancel stop a waiting change once; a decided or unknown id is
// refused and changes nothing; once stopped, a new change may be asked.
func TestVetoCancel(t *testing.T) {
	f := newFixture(t)
	p := f.keyChange("ana@dns.pt", DefaultDelay, "")
	if err := f.propose(p); err != nil {
		t.Fatal(err)
	}
	f.advance(time.Hour)
	var got Pending
	err := f.sqlTx(func(tx *sql.Tx) (err error) {
		got, err = Veto(f.ctx, tx, f.auth(), p.ID, "member:"+p.Fingerprint, f.now())
		return err
	})
	if err != nil || got.State != StateVetoed || !got.Decided.Equal(f.now()) || got.DecidedBy != "member:"+p.Fingerprint {
		t.Fatalf("Veto = %+v, %v", got, err)
	}
	if s := f.state(p.ID); s.State != StateVetoed || !s.Decided.Equal(f.now()) {
		t.Fatalf("stored %+v", s)
	}
	for _, op := range []func(tx *sql.Tx, id string) (Pending, error){
		func(tx *sql.Tx, id string) (Pending, error) {
			return Veto(f.ctx, tx, f.auth(), id, "member:X", f.now())
		},
		func(tx *sql.Tx, id string) (Pending, error) {
			return Cancel(f.ctx, tx, f.auth(), id, "operator:Rita", f.now())
		},
		func(tx *sql.Tx, id string) (Pending, error) {
			return Prove(f.ctx, tx, f.auth(), id, ProofHash("x"), f.now())
		},
	} {
		err := f.sqlTx(func(tx *sql.Tx) error { _, err := op(tx, p.ID); return err })
		pendingErr(t, err, ErrChangeDecided)
		if !strings.Contains(err.Error(), "vetoed") {
			t.Errorf("decided: %v", err)
		}
		err = f.sqlTx(func(tx *sql.Tx) error { _, err := op(tx, "chg-aaaaaaaaaa"); return err })
		pendingErr(t, err, ErrChangeUnknown)
	}
	if _, _, err := f.apply(p.ID, true); !errors.Is(err, ErrChangeDecided) {
		t.Fatalf("apply of a vetoed change: %v", err)
	}
	if s := f.state(p.ID); s.State != StateVetoed || s.DecidedBy != "member:"+p.Fingerprint {
		t.Fatalf("after the refusals %+v", s)
	}

	q := f.keyChange("ana@dns.pt", DefaultDelay, "")
	if err := f.propose(q); err != nil {
		t.Fatalf("a new change after a veto: %v", err)
	}
	err = f.sqlTx(func(tx *sql.Tx) (err error) {
		got, err = Cancel(f.ctx, tx, f.auth(), q.ID, "operator:Rita Lopes", f.now())
		return err
	})
	if err != nil || got.State != StateCancelled || got.DecidedBy != "operator:Rita Lopes" {
		t.Fatalf("Cancel = %+v, %v", got, err)
	}
	if due, _ := DueChanges(f.ctx, f.store.DB(), f.now().Add(2*DefaultDelay)); len(due) != 0 {
		t.Fatalf("stopped changes are due: %v", due)
	}
}

// Prove accepts the change's own token once, before it is due; a wrong
// token changes nothing.
func TestProve(t *testing.T) {
	f := newFixture(t)
	p := f.keyChange("ana@dns.pt", DefaultDelay, "the-token-0123456789")
	if err := f.propose(p); err != nil {
		t.Fatal(err)
	}
	if !f.state(p.ID).NeedsProof() {
		t.Fatal("a change with a proof hash does not need a proof")
	}
	prove := func(token string) (Pending, error) {
		var got Pending
		err := f.sqlTx(func(tx *sql.Tx) (err error) {
			got, err = Prove(f.ctx, tx, f.auth(), p.ID, ProofHash(token), f.now())
			return err
		})
		return got, err
	}
	_, err := prove("another-token-0123456")
	pendingErr(t, err, ErrProofWrong)
	if !f.state(p.ID).Proven.IsZero() {
		t.Fatal("a wrong token proved the change")
	}
	f.advance(time.Hour)
	got, err := prove("the-token-0123456789")
	if err != nil || !got.Proven.Equal(f.now()) || got.NeedsProof() || got.State != StateWaiting {
		t.Fatalf("Prove = %+v, %v", got, err)
	}
	_, err = prove("the-token-0123456789")
	pendingErr(t, err, ErrProofDone)

	// A change without a proof hash is proven by nothing; past due, no
	// proof is taken.
	q := f.keyChange("bob@dns.pt", time.Hour, "")
	if err := f.propose(q); err != nil {
		t.Fatal(err)
	}
	err = f.sqlTx(func(tx *sql.Tx) error {
		_, err := Prove(f.ctx, tx, f.auth(), q.ID, ProofHash(""), f.now())
		return err
	})
	pendingErr(t, err, ErrProofWrong)
	r := f.keyChange("carol@registro.br", time.Hour, "late-token-0123456789")
	if err := f.propose(r); err != nil {
		t.Fatal(err)
	}
	f.advance(time.Hour)
	err = f.sqlTx(func(tx *sql.Tx) error {
		_, err := Prove(f.ctx, tx, f.auth(), r.ID, ProofHash("late-token-0123456789"), f.now())
		return err
	})
	pendingErr(t, err, ErrProofMissing)
}

// Apply writes the change as one ledger entry of the operator who runs
// it, with the evidence of what happened and the signed mail; verify
// stays ok; the change is applied once.
func TestApply(t *testing.T) {
	f := newFixture(t)
	p := f.keyChange("ana@dns.pt", DefaultDelay, "")
	if err := f.propose(p); err != nil {
		t.Fatal(err)
	}
	f.advance(DefaultDelay)
	got, entries, err := f.apply(p.ID, false)
	if err != nil || got.State != StateApplied || got.DecidedBy != "operator:Rita Lopes" || len(entries) != 1 {
		t.Fatalf("Apply = %+v, %d entries, %v", got, len(entries), err)
	}
	e := entries[0]
	ev := string(e.Evidence)
	if e.Actor != "operator:Rita Lopes" || e.Op != "key.set" ||
		!strings.HasPrefix(ev, "pending change "+p.ID+" asked by member:"+p.Fingerprint+" at 2026-11-02T10:00:00Z, announced, not vetoed, applied at 2026-11-05T10:00:00Z (due 2026-11-05T10:00:00Z)\n\nthe signed mail\n") {
		t.Fatalf("entry %s %s, evidence:\n%s", e.Actor, e.Op, ev)
	}
	if c := f.contact("ana@dns.pt"); c.Key.Fingerprint != p.NewFingerprint {
		t.Fatalf("key %s, want %s", c.Key.Fingerprint, p.NewFingerprint)
	}
	f.verify()
	if _, _, err := f.apply(p.ID, false); !errors.Is(err, ErrChangeDecided) {
		t.Fatalf("second apply: %v", err)
	}

	// An email change, by the operator, without evidence.
	bob := f.contact("bob@dns.pt")
	q := &Pending{ContactID: bob.ID, Email: bob.Email, Fingerprint: bob.Key.Fingerprint, Kind: ChangeEmail,
		NewEmail: "bob@example.pt", Actor: "operator:Rita Lopes", Due: f.now().Add(DefaultDelay)}
	if err := f.propose(q); err != nil {
		t.Fatal(err)
	}
	got, entries, err = f.apply(q.ID, false) // approve: before due
	if err != nil || got.State != StateApplied || len(entries) != 1 || entries[0].Op != "contact.update" {
		t.Fatalf("Apply email = %+v, %v", got, err)
	}
	if _, err := f.store.Contact(f.ctx, "bob@example.pt"); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(entries[0].Evidence), "not vetoed, approved by the operator and applied at 2026-11-05T10:00:00Z (due 2026-11-08T10:00:00Z)\n") {
		t.Fatalf("evidence %q", entries[0].Evidence)
	}
	f.verify()
}

// A change of a contact whose address or key changed meanwhile (or that
// was removed) is superseded: nothing is applied, no ledger entry.
func TestApplySuperseded(t *testing.T) {
	f := newFixture(t)
	p := f.keyChange("ana@dns.pt", DefaultDelay, "")
	q := f.keyChange("bob@dns.pt", DefaultDelay, "")
	carol := f.contact("carol@registro.br")
	r := &Pending{ContactID: carol.ID, Email: carol.Email, Fingerprint: carol.Key.Fingerprint, Kind: ChangeEmail,
		NewEmail: "carol@example.br", Actor: "operator:Rita Lopes", Due: f.now().Add(DefaultDelay)}
	// Erin's new key expires before the change is due.
	s := f.keyChange("erin@denic.de", DefaultDelay, "")
	s.NewKey.Expires = f.now().Add(time.Hour).Format(time.RFC3339)
	for _, x := range []*Pending{p, q, r, s} {
		if err := f.propose(x); err != nil {
			t.Fatal(err)
		}
	}
	other := keystest.NewSecret(t, "Ana Silva other", "ana@dns.pt")
	_, err := f.store.Update(f.ctx, directory.Operator, func(tx *directory.Tx) error {
		if _, err := tx.SetKey("ana@dns.pt", dirKey(t, other.Public())); err != nil {
			return err
		}
		if _, err := tx.RemoveContact("bob@dns.pt"); err != nil {
			return err
		}
		_, err := tx.UpdateContact("carol@registro.br", func(c *directory.Contact) error { c.Email = "carol@nic.br"; return nil })
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	head, _ := f.store.Head(f.ctx)
	f.advance(DefaultDelay)
	for _, x := range []*Pending{p, q, r, s} {
		got, entries, err := f.apply(x.ID, false)
		if err != nil || got.State != StateSuperseded || len(entries) != 0 || got.Reason == "" {
			t.Fatalf("%s: Apply = %+v, %d entries, %v", x.Email, got, len(entries), err)
		}
		if s := f.state(x.ID); s.State != StateSuperseded || s.Reason != got.Reason {
			t.Fatalf("stored %+v", s)
		}
	}
	if r := f.state(s.ID).Reason; r != "the new key expired at 2026-11-02 11:00 UTC" {
		t.Errorf("reason %q", r)
	}
	if h, _ := f.store.Head(f.ctx); h != head {
		t.Fatalf("head moved: %v, was %v", h, head)
	}
	if c := f.contact("ana@dns.pt"); c.Key.Fingerprint != other.Fingerprint() {
		t.Fatal("the superseded key was applied")
	}
	f.verify()
}

// A key change that needs a proof of possession and has none expires at
// its due time; before, applying it is refused unless the operator
// confirmed it otherwise; a proven one applies.
func TestApplyUnproven(t *testing.T) {
	f := newFixture(t)
	p := f.keyChange("ana@dns.pt", DefaultDelay, "ana-token-0123456789")
	q := f.keyChange("bob@dns.pt", DefaultDelay, "bob-token-0123456789")
	r := f.keyChange("carol@registro.br", DefaultDelay, "carol-token-012345678")
	for _, x := range []*Pending{p, q, r} {
		if err := f.propose(x); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := f.apply(p.ID, false)
	pendingErr(t, err, ErrProofMissing)
	if s := f.state(p.ID); s.State != StateWaiting {
		t.Fatalf("refused apply left %s", s.State)
	}
	got, entries, err := f.apply(q.ID, true)
	if err != nil || got.State != StateApplied || len(entries) != 1 {
		t.Fatalf("confirmed apply = %+v, %v", got, err)
	}
	if err := f.sqlTx(func(tx *sql.Tx) error {
		_, err := Prove(f.ctx, tx, f.auth(), r.ID, ProofHash("carol-token-012345678"), f.now())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	f.advance(DefaultDelay)
	due, err := DueChanges(f.ctx, f.store.DB(), f.now())
	if err != nil || len(due) != 2 {
		t.Fatalf("due: %v, %v", due, err)
	}
	got, entries, err = f.apply(p.ID, false)
	if err != nil || got.State != StateExpired || len(entries) != 0 || !strings.Contains(got.Reason, "not proven") {
		t.Fatalf("unproven at due = %+v, %v", got, err)
	}
	got, entries, err = f.apply(r.ID, false)
	if err != nil || got.State != StateApplied || len(entries) != 1 || !strings.Contains(string(entries[0].Evidence), "possession of the new key proven at 2026-11-02T10:00:00Z") {
		t.Fatalf("proven at due = %+v, %v, %d entries", got, err, len(entries))
	}
	if c := f.contact("ana@dns.pt"); c.Key.Fingerprint != p.Fingerprint {
		t.Fatal("the expired key was applied")
	}
	f.verify()
}

// An id once used, by a change decided or not, is never given again:
// Propose draws another.
func TestChangeIDNotReused(t *testing.T) {
	f := newFixture(t)
	same := bytes.Repeat([]byte{1}, changeIDLen)
	testOnlyRand = bytes.NewReader(append(append(append([]byte{}, same...), same...), bytes.Repeat([]byte{2}, changeIDLen)...))
	t.Cleanup(func() { testOnlyRand = nil })
	p := f.keyChange("ana@dns.pt", DefaultDelay, "")
	if err := f.propose(p); err != nil {
		t.Fatal(err)
	}
	if err := f.sqlTx(func(tx *sql.Tx) error {
		_, err := Cancel(f.ctx, tx, f.auth(), p.ID, "operator:Rita", f.now())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	q := f.keyChange("ana@dns.pt", DefaultDelay, "")
	if err := f.propose(q); err != nil {
		t.Fatal(err)
	}
	if p.ID != "chg-bbbbbbbbbb" || q.ID != "chg-cccccccccc" {
		t.Fatalf("ids %s, %s", p.ID, q.ID)
	}
	if s := f.state(p.ID); s.State != StateCancelled || s.Email != "ana@dns.pt" {
		t.Fatalf("the cancelled change was overwritten: %+v", s)
	}
}

func TestValidChangeID(t *testing.T) {
	for s, want := range map[string]bool{
		"chg-abcdefgh23": true, "chg-abcdefgh2": false, "chg-abcdefgh234": false, "chg-ABCDEFGH23": false,
		"chg-abcdefgh18": false, "abc-abcdefgh23": false, "": false,
	} {
		if got := ValidChangeID(s); got != want {
			t.Errorf("ValidChangeID(%q) = %v", s, got)
		}
	}
}

// A proposal is told to the contact's old key, its new key and the
// ccTLD's other contacts, as asked for, with the change id, its due time
// and how to stop it; a decision as decided.
func TestAnnouncePending(t *testing.T) {
	f := newFixture(t)
	p := f.keyChange("ana@dns.pt", DefaultDelay, "ana-token-0123456789")
	if err := f.propose(p); err != nil {
		t.Fatal(err)
	}
	snap, err := f.store.Snapshot(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	ana := f.contact("ana@dns.pt")
	n := NewNotices(snap, "")
	n.AnnouncePending(&ana, p, nil, []string{"asks to change the key from " + KeyText(ana.Key) + " to " + KeyText(p.NewKey) + " (" + p.ID + ")"})
	var to []string
	for _, x := range n.List() {
		to = append(to, x.Email+" "+x.Key.Fingerprint)
	}
	want := []string{"ana@dns.pt " + ana.Key.Fingerprint, "ana@dns.pt " + p.NewFingerprint, "bob@dns.pt " + f.contact("bob@dns.pt").Key.Fingerprint}
	if strings.Join(to, "\n") != strings.Join(want, "\n") {
		t.Fatalf("told:\n%s\nwant:\n%s", strings.Join(to, "\n"), strings.Join(want, "\n"))
	}
	info, _ := f.store.Info(f.ctx)
	c := Change{Via: "signed mail", By: "a mail signed by Ana Silva <ana@dns.pt>", Head: snap.Head}
	body := noticeBody(info, dirAddress, c, n.List()[2], f.now())
	for _, s := range []string{
		"Test Directory: a change asked for by signed mail\n",
		"\nasked for changes that wait before they take effect:\n\n  - ana@dns.pt (pt): asks to change the key",
		"Change " + p.ID + " takes effect at 2026-11-05 10:00 UTC unless",
		"answer the\nchallenge sent encrypted to it",
		"\n  VETO " + p.ID + "\n",
		"\nIf you are an admin contact of pt, you may stop it: send\n" + dirAddress + " a mail",
	} {
		if !strings.Contains(body, s) {
			t.Errorf("no %q in:\n%s", s, body)
		}
	}
	if strings.Contains(body, "changed the directory") {
		t.Errorf("a proposal says it changed the directory:\n%s", body)
	}
	// Ana, at the key the change replaces: hers to veto.
	body = noticeBody(info, dirAddress, c, n.List()[0], f.now())
	if !strings.Contains(body, "\nTo stop it, send "+dirAddress+" a mail signed by your registered\nkey") || !strings.Contains(body, "Any admin contact of pt may veto it too") || strings.Contains(body, "If you are an admin") {
		t.Errorf("the contact's notice:\n%s", body)
	}

	// A decision, with a change made in the same transaction.
	p.State = StateVetoed
	n = NewNotices(snap, "")
	n.Announce(&ana, &ana, []string{"pt"}, []string{"name changed"})
	n.AnnouncePending(&ana, p, nil, []string{"key change " + p.ID + " vetoed"})
	body = noticeBody(info, dirAddress, c, n.List()[0], f.now())
	for _, s := range []string{
		"Test Directory: a change made by signed mail\n",
		"changed the directory:\n\n  - ana@dns.pt (pt): name changed\n\nand decided on changes that waited:\n\n  - ana@dns.pt (pt): key change " + p.ID + " vetoed\n",
	} {
		if !strings.Contains(body, s) {
			t.Errorf("no %q in:\n%s", s, body)
		}
	}
	if strings.Contains(body, "VETO") {
		t.Errorf("a decision says how to veto:\n%s", body)
	}
}

// Line is the one wording of a change in each state.
func TestPendingLine(t *testing.T) {
	p := Pending{ID: "chg-abcdefgh23", Email: "ana@dns.pt", Kind: ChangeEmail, NewEmail: "ana@example.pt",
		Actor: "operator:Rita", Requested: start, State: StateWaiting}
	for state, want := range map[string]string{
		StateWaiting:    "asks to change the email from ana@dns.pt to ana@example.pt (change chg-abcdefgh23)",
		StateApplied:    "change chg-abcdefgh23 applied: the email from ana@dns.pt to ana@example.pt, asked by operator:Rita at 2026-11-02 10:00 UTC",
		StateVetoed:     "change chg-abcdefgh23 of the email from ana@dns.pt to ana@example.pt vetoed by member:F00; nothing changed",
		StateCancelled:  "change chg-abcdefgh23 of the email from ana@dns.pt to ana@example.pt cancelled by member:F00; nothing changed",
		StateSuperseded: "change chg-abcdefgh23 of the email from ana@dns.pt to ana@example.pt superseded: why; nothing changed",
	} {
		q := p
		q.State, q.DecidedBy, q.Reason = state, "member:F00", "why"
		if got := q.Line(); got != want {
			t.Errorf("%s:\n got %s\nwant %s", state, got, want)
		}
	}
}

// A change made at once (a KEY-ROTATE signed by both keys, the
// operator's --confirmed), or the contact's removal, supersedes in the
// same transaction every change of that contact that waits and can no
// longer be applied (it no longer finds the address and key it was
// asked for), not only at its due time: of either kind, with what
// changed as the reason, and the contact as the change found it for the
// notices. A change still possible (the same contact's name changed, a
// refresh of the same key) keeps waiting; a rolled-back transaction
// keeps them all.
func TestSupersedeWaiting(t *testing.T) {
	f := newFixture(t)
	anaKey := f.keyChange("ana@dns.pt", DefaultDelay, "tok")
	ana := f.contact("ana@dns.pt")
	anaEmail := &Pending{ContactID: ana.ID, Email: ana.Email, Fingerprint: ana.Key.Fingerprint, Kind: ChangeEmail,
		NewEmail: "ana@example.pt", Actor: "member:" + ana.Key.Fingerprint, Due: f.now().Add(DefaultDelay)}
	bob := f.keyChange("bob@dns.pt", DefaultDelay, "")
	carol := f.contact("carol@registro.br")
	carolKey := f.keyChange("carol@registro.br", DefaultDelay, "")
	erin := f.keyChange("erin@denic.de", DefaultDelay, "")
	for _, x := range []*Pending{anaKey, anaEmail, bob, carolKey, erin} {
		if err := f.propose(x); err != nil {
			t.Fatal(err)
		}
	}
	actor, err := directory.OperatorActor("Rita Lopes")
	if err != nil {
		t.Fatal(err)
	}
	other := keystest.NewSecret(t, "Ana Silva other", "ana@dns.pt")
	run := func(rollback bool) []Superseded {
		var got []Superseded
		_, err := f.store.Update(f.ctx, actor, func(tx *directory.Tx) error {
			// Ana's key changes at once; Bob is removed; Carol moves to
			// another address; Erin only changes her name.
			if _, err := tx.SetKey("ana@dns.pt", dirKey(t, other.Public())); err != nil {
				return err
			}
			if _, err := tx.RemoveContact("bob@dns.pt"); err != nil {
				return err
			}
			if _, err := tx.UpdateContact("carol@registro.br", func(c *directory.Contact) error { c.Email = "carol@nic.br"; return nil }); err != nil {
				return err
			}
			if _, err := tx.UpdateContact("erin@denic.de", func(c *directory.Contact) error { c.Name = "Erin Weber-Schmidt"; return nil }); err != nil {
				return err
			}
			var err error
			if got, err = SupersedeWaiting(f.ctx, tx, f.auth(), actor.Name, f.now()); err != nil {
				return err
			}
			if rollback {
				f.decided.Forget(tx.SQL())
				return errors.New("roll back")
			}
			return f.decided.Commit(tx.SQL())
		})
		if rollback != (err != nil) {
			t.Fatalf("Update: %v", err)
		}
		return got
	}
	run(true)
	for _, x := range []*Pending{anaKey, anaEmail, bob, carolKey, erin} {
		if s := f.state(x.ID).State; s != StateWaiting {
			t.Fatalf("%s after a rollback: %s", x.ID, s)
		}
	}
	got := run(false)
	want := map[string]string{
		anaKey.ID:   "the key of ana@dns.pt was changed to " + KeyText(dirKey(t, other.Public())) + " before the change was due",
		anaEmail.ID: "the key of ana@dns.pt was changed to " + KeyText(dirKey(t, other.Public())) + " before the change was due",
		bob.ID:      "bob@dns.pt was removed from the directory before the change was due",
		carolKey.ID: "the address of carol@registro.br was changed to carol@nic.br before the change was due",
	}
	if len(got) != len(want) {
		t.Fatalf("superseded %d changes, want %d: %+v", len(got), len(want), got)
	}
	for _, s := range got {
		p := s.Pending
		if want[p.ID] == "" || p.State != StateSuperseded || p.Reason != want[p.ID] || p.DecidedBy != actor.Name || !p.Decided.Equal(f.now()) {
			t.Errorf("superseded %+v, want reason %q", p, want[p.ID])
		}
		if st := f.state(p.ID); st.State != StateSuperseded || st.Reason != p.Reason {
			t.Errorf("stored %+v", st)
		}
		// The contact as the change found it: its address, key and roles.
		if s.Contact.Email != p.Email || fingerprint(s.Contact.Key) != p.Fingerprint || len(s.Contact.Roles) == 0 {
			t.Errorf("%s: contact %+v", p.ID, s.Contact)
		}
	}
	if st := f.state(erin.ID).State; st != StateWaiting {
		t.Errorf("erin's change: %s", st)
	}
	if carol.Email != "carol@registro.br" {
		t.Fatal(carol.Email)
	}
	// Announced as decided to the contact and its ccTLD's other contacts.
	n := NewNotices(&directory.Snapshot{}, "")
	for _, s := range got {
		n.AnnouncePending(&s.Contact, &s.Pending, nil, []string{s.Pending.Line()})
	}
	if len(n.List()) == 0 || len(n.List()[0].Decided) == 0 {
		t.Fatalf("notices %+v", n.List())
	}
	// Nothing more to supersede: a second call finds nothing.
	_, err = f.store.Update(f.ctx, actor, func(tx *directory.Tx) error {
		if _, err := tx.UpdateContact("erin@denic.de", func(c *directory.Contact) error { c.Name = "Erin W."; return nil }); err != nil {
			return err
		}
		more, err := SupersedeWaiting(f.ctx, tx, f.auth(), actor.Name, f.now())
		if err == nil && len(more) != 0 {
			err = fmt.Errorf("superseded again: %+v", more)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	f.verify()
}

// A row of pending_changes is authenticated under the home's secret over
// every field: one changed or written in the database (a cancelled
// change set back to waiting, another due time, new key, actor, a row
// inserted, a row made under another secret) is never applied, proven
// or decided, and Tampered lists it; an unreadable new key does not
// hide the other rows. A member's change whose signed mail does not
// verify by the registered key is not applied either.
func TestPendingTampered(t *testing.T) {
	f := newFixture(t)
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := f.store.DB().ExecContext(f.ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	tampered := func(id string) {
		t.Helper()
		_, _, err := f.apply(id, true)
		pendingErr(t, err, ErrTampered)
		if !strings.Contains(err.Error(), "change "+id) {
			t.Fatalf("error does not name the change: %v", err)
		}
		for _, decide := range []func(tx *sql.Tx) error{
			func(tx *sql.Tx) error { _, err := Veto(f.ctx, tx, f.auth(), id, "member:X", f.now()); return err },
			func(tx *sql.Tx) error {
				_, err := Cancel(f.ctx, tx, f.auth(), id, "operator:Rita", f.now())
				return err
			},
			func(tx *sql.Tx) error {
				_, err := Prove(f.ctx, tx, f.auth(), id, ProofHash("tok"), f.now())
				return err
			},
		} {
			pendingErr(t, f.sqlTx(decide), ErrTampered)
		}
		bad, err := Tampered(f.ctx, f.store.DB(), f.auth(), true)
		if err != nil || !slicesContainsID(bad, id) {
			t.Fatalf("Tampered = %v, %v; want %s", bad, err, id)
		}
	}

	// Cancelled, then revived in the database.
	p := f.keyChange("ana@dns.pt", DefaultDelay, "")
	if err := f.propose(p); err != nil {
		t.Fatal(err)
	}
	if bad, err := Tampered(f.ctx, f.store.DB(), f.auth(), true); err != nil || len(bad) != 0 {
		t.Fatalf("Tampered = %v, %v", bad, err)
	}
	if err := f.sqlTx(func(tx *sql.Tx) error {
		_, err := Cancel(f.ctx, tx, f.auth(), p.ID, "operator:Rita", f.now())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	exec(`UPDATE pending_changes SET state = 'waiting', decided = NULL, decided_by = NULL, due = ? WHERE id = ?`, formatTime(f.now().Add(-time.Hour)), p.ID)
	tampered(p.ID)
	key := f.contact("ana@dns.pt").Key.Fingerprint
	if key != p.Fingerprint {
		t.Fatalf("key changed to %s", key)
	}
	exec(`DELETE FROM pending_changes WHERE id = ?`, p.ID)

	// Each field changed alone.
	for _, col := range []string{"due", "new_fingerprint", "actor", "evidence", "proof_hash", "email", "contact_id", "requested"} {
		q := f.keyChange("ana@dns.pt", DefaultDelay, "tok-"+col)
		if err := f.propose(q); err != nil {
			t.Fatal(err)
		}
		switch col {
		case "contact_id":
			exec(`UPDATE pending_changes SET contact_id = contact_id + 1 WHERE id = ?`, q.ID)
		case "proof_hash":
			exec(`UPDATE pending_changes SET proof_hash = NULL WHERE id = ?`, q.ID)
		default:
			exec(`UPDATE pending_changes SET `+col+` = `+col+` || 'x' WHERE id = ?`, q.ID)
		}
		tampered(q.ID)
		exec(`DELETE FROM pending_changes WHERE id = ?`, q.ID)
	}

	// Made under another secret (another home's outbox key).
	r := f.keyChange("ana@dns.pt", DefaultDelay, "")
	if err := f.sqlTx(func(tx *sql.Tx) error {
		return Propose(f.ctx, tx, Auth{Secret: bytes.Repeat([]byte{7}, 32)}, r, f.now())
	}); err != nil {
		t.Fatal(err)
	}
	tampered(r.ID)
	exec(`DELETE FROM pending_changes WHERE id = ?`, r.ID)

	// An unreadable new key, by someone who can write the database: the
	// row is refused, the list still reads.
	s := f.keyChange("ana@dns.pt", DefaultDelay, "")
	if err := f.propose(s); err != nil {
		t.Fatal(err)
	}
	exec(`UPDATE pending_changes SET new_key = '{' WHERE id = ?`, s.ID)
	if ps, err := ListPending(f.ctx, f.store.DB(), false); err != nil || len(ps) != 1 {
		t.Fatalf("ListPending = %v, %v", ps, err)
	}
	tampered(s.ID)
	exec(`DELETE FROM pending_changes WHERE id = ?`, s.ID)

	// A member's change whose signed mail does not verify.
	u := f.keyChange("ana@dns.pt", DefaultDelay, "")
	u.Evidence = []byte("another mail\n")
	if err := f.propose(u); err != nil {
		t.Fatal(err)
	}
	f.advance(DefaultDelay)
	_, _, err := f.apply(u.ID, false)
	pendingErr(t, err, ErrTampered)
	if !strings.Contains(err.Error(), "the signed mail that asked does not verify") {
		t.Fatalf("err = %v", err)
	}
	if got := f.state(u.ID); got.State != StateWaiting {
		t.Fatalf("state %s", got.State)
	}
	f.verify()
}

func slicesContainsID(ps []Pending, id string) bool {
	for _, p := range ps {
		if p.ID == id {
			return true
		}
	}
	return false
}

// A member's change is made only while the member may still ask for it
// by mail: one of its ccTLDs active. Once .pt is inactive, Ana's key
// change asked by mail is superseded when due, saying why; the
// operator's change of Bob's address is still applied.
func TestApplyMemberInactive(t *testing.T) {
	f := newFixture(t)
	p := f.keyChange("ana@dns.pt", DefaultDelay, "")
	if err := f.propose(p); err != nil {
		t.Fatal(err)
	}
	bob := f.contact("bob@dns.pt")
	q := &Pending{ContactID: bob.ID, Email: bob.Email, Fingerprint: bob.Key.Fingerprint, Kind: ChangeEmail,
		NewEmail: "bob@example.pt", Actor: "operator:Rita Lopes", Due: f.now().Add(DefaultDelay)}
	if err := f.propose(q); err != nil {
		t.Fatal(err)
	}
	actor, _ := directory.OperatorActor("Rita Lopes")
	if _, err := f.store.Update(f.ctx, actor, func(tx *directory.Tx) error {
		_, err := tx.UpdateMember("pt", func(m *directory.Member) error { m.Status = directory.StatusInactive; return nil })
		return err
	}); err != nil {
		t.Fatal(err)
	}
	f.advance(DefaultDelay)
	got, entries, err := f.apply(p.ID, false)
	if err != nil || got.State != StateSuperseded || len(entries) != 0 || got.Reason != "none of the ccTLDs of ana@dns.pt is active now" {
		t.Fatalf("Apply = %+v, %d entries, %v", got, len(entries), err)
	}
	if c := f.contact("ana@dns.pt"); c.Key.Fingerprint != p.Fingerprint {
		t.Fatalf("key changed to %s", c.Key.Fingerprint)
	}
	if got, _, err := f.apply(q.ID, false); err != nil || got.State != StateApplied {
		t.Fatalf("operator's change: %+v, %v", got, err)
	}
	f.verify()
}

// A waiting change whose row fails authentication can only be
// discarded: the row ends cancelled with DiscardReason and authentic
// again, so it no longer reads as tampering nor blocks a change of its
// kind; nothing is applied. An authentic or decided row is refused.
func TestDiscardTampered(t *testing.T) {
	f := newFixture(t)
	p := f.keyChange("ana@dns.pt", DefaultDelay, "")
	if err := f.propose(p); err != nil {
		t.Fatal(err)
	}
	discard := func(id string) (Pending, error) {
		var got Pending
		err := f.sqlTx(func(tx *sql.Tx) error {
			var err error
			got, err = Discard(f.ctx, tx, f.auth(), id, "operator:Rita", f.now())
			return err
		})
		return got, err
	}
	_, err := discard(p.ID)
	pendingErr(t, err, ErrNotTampered)

	if _, err := f.store.DB().ExecContext(f.ctx, `UPDATE pending_changes SET due = ? WHERE id = ?`, formatTime(f.now().Add(-time.Hour)), p.ID); err != nil {
		t.Fatal(err)
	}
	if q := f.keyChange("ana@dns.pt", DefaultDelay, ""); f.propose(q) == nil {
		t.Fatal("a second key change was proposed while a tampered one waits")
	}
	got, err := discard(p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != StateCancelled || got.Reason != DiscardReason || got.DecidedBy != "operator:Rita" {
		t.Fatalf("discarded = %+v", got)
	}
	if bad, err := Tampered(f.ctx, f.store.DB(), f.auth(), true); err != nil || len(bad) != 0 {
		t.Fatalf("Tampered after discard = %v, %v", bad, err)
	}
	if key := f.contact("ana@dns.pt").Key.Fingerprint; key != p.Fingerprint {
		t.Fatalf("key changed to %s", key)
	}
	if due, err := DueChanges(f.ctx, f.store.DB(), f.now()); err != nil || len(due) != 0 {
		t.Fatalf("due after discard = %v, %v", due, err)
	}
	_, err = discard(p.ID)
	pendingErr(t, err, ErrNotTampered)
	if _, err := f.store.DB().ExecContext(f.ctx, `UPDATE pending_changes SET reason = 'x' WHERE id = ?`, p.ID); err != nil {
		t.Fatal(err)
	}
	_, err = discard(p.ID)
	pendingErr(t, err, ErrChangeDecided)
	_, err = discard("chg-aaaaaaaaaa")
	pendingErr(t, err, ErrChangeUnknown)
	if q := f.keyChange("ana@dns.pt", DefaultDelay, ""); f.propose(q) != nil {
		t.Fatalf("a key change after the discard: %v", f.propose(q))
	}
}

// A change is decided from its row as read and authenticated in the
// transaction (Waiting), never from a copy read before: a row edited
// in the database while the copy was read (its asker, its contact, its
// signed mail: what the entry's evidence and the notices are made of)
// and put back before the transaction is refused (ErrChangeMoved) when
// that copy is given as ApplyOptions.Read, and nothing is applied.
func TestApplyReadElsewhere(t *testing.T) {
	f := newFixture(t)
	p := f.keyChange("ana@dns.pt", DefaultDelay, "")
	if err := f.propose(p); err != nil {
		t.Fatal(err)
	}
	db := f.store.DB()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(f.ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`UPDATE pending_changes SET actor = 'member:EVIL', contact_id = contact_id + 1, evidence = CAST('forged' AS BLOB) WHERE id = ?`, p.ID)
	copied := f.state(p.ID)
	if copied.Authentic(f.tokenSK) {
		t.Fatal("an edited row is authentic")
	}
	err := f.sqlTx(func(tx *sql.Tx) error { _, err := Waiting(f.ctx, tx, f.auth(), p.ID); return err })
	pendingErr(t, err, ErrTampered)
	exec(`UPDATE pending_changes SET actor = ?, contact_id = ?, evidence = CAST('the signed mail
' AS BLOB) WHERE id = ?`, p.Actor, p.ContactID, p.ID)

	var authentic Pending
	if err := f.sqlTx(func(tx *sql.Tx) (err error) { authentic, err = Waiting(f.ctx, tx, f.auth(), p.ID); return err }); err != nil {
		t.Fatal(err)
	}
	if authentic.ContactID != p.ContactID || authentic.Actor != p.Actor {
		t.Fatalf("Waiting = %+v", authentic)
	}

	f.clock = f.clock.Add(DefaultDelay + time.Hour)
	actor, err := directory.OperatorActor("Rita Lopes")
	if err != nil {
		t.Fatal(err)
	}
	applyRead := func(read Pending) (Pending, error) {
		actor.Evidence = ApplyEvidence(read, "", f.now())
		var got Pending
		_, err := f.store.Update(f.ctx, actor, func(tx *directory.Tx) error {
			var err error
			got, err = Apply(f.ctx, tx, p.ID, ApplyOptions{Auth: f.auth(), By: actor.Name, Evidence: testEvidence, Read: &read}, f.now())
			return err
		})
		return got, err
	}
	_, err = applyRead(copied)
	pendingErr(t, err, ErrChangeMoved)
	if got := f.state(p.ID); got.State != StateWaiting {
		t.Fatalf("state after a refused apply: %s", got.State)
	}
	if key := f.contact("ana@dns.pt").Key.Fingerprint; key != p.Fingerprint {
		t.Fatalf("key changed to %s", key)
	}
	got, err := applyRead(f.state(p.ID))
	if err != nil || got.State != StateApplied {
		t.Fatalf("apply of the row as read: %+v, %v", got, err)
	}
	f.verify()
}

// A decided change stays decided whatever its row says: a row restored
// from an earlier copy (saved while it waited) after a veto passes its
// MAC, but the home's record of decisions has it vetoed, so it is
// tampered: never applied, proven or decided again, listed by
// Tampered, blocking a new change of its kind until discarded. A
// decision rolled back records nothing; one recorded whose transaction
// then fails blocks the change (fail-safe). A line of the record whose
// MAC fails is ignored with a warning.
func TestDecisionsRecord(t *testing.T) {
	f := newFixture(t)
	p := f.keyChange("ana@dns.pt", DefaultDelay, "")
	if err := f.propose(p); err != nil {
		t.Fatal(err)
	}
	db := f.store.DB()
	var saved []any
	cols := []string{"state", "decided", "decided_by", "reason", "mac"}
	{
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := db.QueryRowContext(f.ctx, `SELECT `+strings.Join(cols, ", ")+` FROM pending_changes WHERE id = ?`, p.ID).Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		saved = vals
	}
	if err := f.sqlTx(func(tx *sql.Tx) error { _, err := Veto(f.ctx, tx, f.auth(), p.ID, "member:X", f.now()); return err }); err != nil {
		t.Fatal(err)
	}
	restore := func() {
		t.Helper()
		if _, err := db.ExecContext(f.ctx, `UPDATE pending_changes SET state = ?, decided = ?, decided_by = ?, reason = ?, mac = ? WHERE id = ?`, append(saved, p.ID)...); err != nil {
			t.Fatal(err)
		}
	}
	restore()
	if !f.state(p.ID).Authentic(f.tokenSK) {
		t.Fatal("the restored row fails its MAC: the test restores nothing")
	}
	if bad, err := Tampered(f.ctx, db, f.auth(), false); err != nil || len(bad) != 1 || bad[0].ID != p.ID {
		t.Fatalf("Tampered after the restore = %v, %v", bad, err)
	}
	err := f.sqlTx(func(tx *sql.Tx) error { _, err := Waiting(f.ctx, tx, f.auth(), p.ID); return err })
	pendingErr(t, err, ErrTampered)
	if !strings.Contains(err.Error(), "decided vetoed at ") || !strings.Contains(err.Error(), "per the home's record of decisions, but its row says waiting") {
		t.Errorf("err = %v", err)
	}
	f.clock = f.clock.Add(DefaultDelay + time.Hour)
	_, _, err = f.apply(p.ID, false)
	pendingErr(t, err, ErrTampered)
	err = f.sqlTx(func(tx *sql.Tx) error {
		_, err := Cancel(f.ctx, tx, f.auth(), p.ID, "operator:Rita", f.now())
		return err
	})
	pendingErr(t, err, ErrTampered)
	q := f.keyChange("ana@dns.pt", DefaultDelay, "")
	pendingErr(t, f.propose(q), ErrTampered)
	if key := f.contact("ana@dns.pt").Key.Fingerprint; key != p.Fingerprint {
		t.Fatalf("key changed to %s", key)
	}
	if got, err := func() (got Pending, err error) {
		err = f.sqlTx(func(tx *sql.Tx) error {
			got, err = Discard(f.ctx, tx, f.auth(), p.ID, "operator:Rita", f.now())
			return err
		})
		return
	}(); err != nil || got.State != StateCancelled {
		t.Fatalf("discard of the restored row: %+v, %v", got, err)
	}
	if err := f.propose(q); err != nil {
		t.Fatalf("a key change after the discard: %v", err)
	}

	// Rolled back: nothing recorded, the change still waits.
	err = f.sqlTx(func(tx *sql.Tx) error {
		if _, err := Cancel(f.ctx, tx, f.auth(), q.ID, "operator:Rita", f.now()); err != nil {
			return err
		}
		return errors.New("roll back")
	})
	if err == nil || err.Error() != "roll back" {
		t.Fatal(err)
	}
	if bad, err := Tampered(f.ctx, db, f.auth(), false); err != nil || len(bad) != 0 {
		t.Fatalf("Tampered after a rollback = %v, %v", bad, err)
	}
	// Recorded, then the transaction fails: blocked.
	tx, err := db.BeginTx(f.ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Cancel(f.ctx, tx, f.auth(), q.ID, "operator:Rita", f.now()); err != nil {
		t.Fatal(err)
	}
	if err := f.decided.Commit(tx); err != nil {
		t.Fatal(err)
	}
	tx.Rollback()
	if bad, err := Tampered(f.ctx, db, f.auth(), false); err != nil || len(bad) != 1 || bad[0].ID != q.ID {
		t.Fatalf("Tampered after a failed commit = %v, %v", bad, err)
	}

	// A line whose MAC fails is ignored, told by its number.
	var warned []string
	f.decided.Warn = func(format string, args ...any) { warned = append(warned, fmt.Sprintf(format, args...)) }
	fh, err := os.OpenFile(f.decided.Path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(fh, "%s vetoed 2026-11-01T00:00:00Z %s\n", f.state(q.ID).ID, strings.Repeat("0", 64))
	fh.Close()
	if rec, err := f.decided.Load(); err != nil || len(rec) != 2 || len(warned) != 1 || !strings.Contains(warned[0], "line 4 ignored") {
		t.Fatalf("Load = %v, %v; warned %q", rec, err, warned)
	}
	if fi, err := os.Stat(f.decided.Path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("record of decisions: %v, %v", fi.Mode(), err)
	}
}

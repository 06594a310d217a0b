package mailcmd

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
	"github.com/ccdir/ccdir/pkg/liveness"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

var confirmLine = regexp.MustCompile(`(?m)^CONFIRM (chg-[a-z2-7]{10}) ([A-Za-z0-9_-]+)$`)

// newKey is a second key for the member email, with its secret.
func (f *fixture) newKey(email string) *keys.Secret {
	f.t.Helper()
	sec := keystest.NewSecret(f.t, "New key of "+email, email)
	sec.SetClock(f.now)
	return sec
}

func (f *fixture) pending(id string) liveness.Pending {
	f.t.Helper()
	p, err := liveness.GetPending(f.ctx, f.store.DB(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

// refused handles a mail from email that must be refused, changing
// nothing, with a reply that says want.
func (f *fixture) refused(email, text, want string, atts ...pgpmime.Part) {
	f.t.Helper()
	serial := f.serial()
	res := f.handle(f.accepted(email, text, atts...))
	if !res.Failed || !res.Replied || len(res.Entries) != 0 || len(res.Pending) != 0 || len(res.Notified) != 0 || f.serial() != serial {
		f.t.Fatalf("%q from %s: %+v", text, email, res)
	}
	mustContain(f.t, f.reply(email).text, want)
}

// A KEY-ROTATE signed by the registered key alone is a pending change:
// nothing changes, the reply says so, a challenge goes encrypted to the
// new key alone, and the request is announced to the new key and the
// ccTLD's contacts, with its id. CONFIRM proves the new key once, only
// with the right token, only by the contact itself; the contact's old
// key vetoes it; nobody else who is not an admin of .pt may.
func TestKeyRotatePending(t *testing.T) {
	f := newFixture(t)
	old := f.members["alice@dns.pt"].secret
	nk := f.newKey("alice@dns.pt")
	serial := f.serial()

	a := f.accepted("alice@dns.pt", "KEY-ROTATE\n", keyPart(t, nk.Public()))
	res := f.handle(a)
	if res.Failed || len(res.Entries) != 0 || len(res.Pending) != 1 || len(res.Challenged) != 1 || f.serial() != serial {
		t.Fatalf("%+v (%v)", res, res.Results[0].Err)
	}
	id := res.Pending[0]
	if c, _ := f.store.Contact(f.ctx, "alice@dns.pt"); c.Key.Fingerprint != old.Fingerprint() {
		t.Fatal("the key changed at once")
	}
	if !strings.Contains(res.Summary(), "0 ledger entries, reply queued") || !strings.Contains(res.Summary(), "pending "+id) {
		t.Errorf("summary %q", res.Summary())
	}
	p := f.pending(id)
	if p.State != liveness.StateWaiting || p.Kind != liveness.ChangeKey || p.NewFingerprint != nk.Fingerprint() ||
		p.Fingerprint != old.Fingerprint() || p.Actor != "member:"+old.Fingerprint() || !bytes.Equal(p.Evidence, a.Evidence) ||
		!p.Due.Equal(fixedNow.Add(DefaultChangeDelay)) || !p.NeedsProof() {
		t.Fatalf("pending %+v", p)
	}

	// The reply, to the old key.
	mustContain(t, f.reply("alice@dns.pt").text, "pending: change "+id, "takes effect at 2026-11-05 10:00 UTC",
		"encrypted to the new key alone", "VETO "+id, nk.Fingerprint())

	// The challenge: encrypted to the new key, which the old one cannot read.
	chs := f.bodies(liveness.KindProof, "alice@dns.pt")
	if len(chs) != 1 {
		t.Fatalf("%d challenges", len(chs))
	}
	if _, err := pgpmime.Open(bytes.NewReader(chs[0]), old, pgpmime.OpenOptions{Keyring: []*keys.Public{f.dir.Public()}, Now: f.now()}); err == nil {
		t.Fatal("the old key reads the challenge")
	}
	ch := f.open(chs[0], nk)
	m := confirmLine.FindStringSubmatch(ch.text)
	if m == nil || m[1] != id || liveness.ProofHash(m[2]) != p.ProofHash {
		t.Fatalf("challenge:\n%s", ch.text)
	}
	token := m[2]
	mustContain(t, ch.text, "CURRENT key "+old.Fingerprint())

	// The notices: to the new key at Alice's address, and to bob and
	// noc; each a request, with the id and how to stop it.
	for _, to := range []struct {
		email string
		sec   *keys.Secret
	}{{"alice@dns.pt", nk}, {"bob@dns.pt", f.members["bob@dns.pt"].secret}, {"noc@dns.pt", f.members["noc@dns.pt"].secret}} {
		ns := f.bodies(KindNotify, to.email)
		if len(ns) != 1 {
			t.Fatalf("%d notices to %s", len(ns), to.email)
		}
		n := f.open(ns[0], to.sec)
		mustContain(t, n.text, "a change asked for by signed mail", "alice@dns.pt (pt): asks to change the key from "+old.Fingerprint()+" to "+nk.Fingerprint(), "VETO "+id, "answer the\nchallenge")
		if n.inner.Protected.Subject != "Test Directory: change asked for by signed mail" {
			t.Errorf("subject %q", n.inner.Protected.Subject)
		}
	}
	if n := len(f.bodies(KindNotify, "carol@registro.br")); n != 0 {
		t.Errorf("carol (.br) got %d notices", n)
	}

	// A second key change while this one waits: refused.
	f.refused("alice@dns.pt", "KEY-ROTATE\n", "not done: your key change "+id+" waits already", keyPart(t, keystest.NewSecret(t, "Third key", "alice@dns.pt").Public()))

	// CONFIRM: a wrong token, another contact, then the right one once.
	f.refused("alice@dns.pt", "CONFIRM "+id+" "+strings.Repeat("A", liveness.TokenLen)+"\n", "FAILED: not confirmed: this is not the token of change "+id)
	f.refused("bob@dns.pt", "CONFIRM "+id+" "+token+"\n", "FAILED: not confirmed: change "+id+" is not a change of yours")
	f.refused("alice@dns.pt", "CONFIRM chg-aaaaaaaaaa "+token+"\n", "FAILED: not confirmed: no change has the id chg-aaaaaaaaaa")
	res = f.handle(f.accepted("alice@dns.pt", "CONFIRM "+strings.ToUpper(id)+" "+token+"\n"))
	if res.Failed || len(res.Entries) != 0 {
		t.Fatalf("confirm: %+v", res)
	}
	mustContain(t, f.reply("alice@dns.pt").text, "confirmed: you hold the new key "+nk.Fingerprint()+"; change "+id+" takes effect at 2026-11-05 10:00 UTC")
	if f.pending(id).Proven.IsZero() {
		t.Fatal("not proven")
	}
	f.refused("alice@dns.pt", "CONFIRM "+id+" "+token+"\n", "FAILED: not confirmed: change "+id+" was confirmed already")

	// VETO: not by a contact of another ccTLD, an admin of another, or a
	// co-contact who is no admin; by the old key.
	for _, who := range []string{"erin@denic.de", "carol@registro.br", "noc@dns.pt"} {
		f.refused(who, "VETO "+id+"\n", "FAILED: not vetoed: you may not veto change "+id+"; only alice@dns.pt itself (signed by its registered key) or an admin contact of pt may")
	}
	f.refused("alice@dns.pt", "VETO chg-aaaaaaaaaa\n", "FAILED: not vetoed: no change has the id chg-aaaaaaaaaa")
	before := len(f.bodies(KindNotify, "bob@dns.pt"))
	res = f.handle(f.accepted("alice@dns.pt", "VETO "+id+"\n"))
	if res.Failed || len(res.Entries) != 0 {
		t.Fatalf("veto: %+v", res)
	}
	mustContain(t, f.reply("alice@dns.pt").text, "vetoed: change "+id+" (the key from "+old.Fingerprint())
	if p := f.pending(id); p.State != liveness.StateVetoed || p.DecidedBy != "member:"+old.Fingerprint() {
		t.Fatalf("after the veto: %+v", p)
	}
	ns := f.bodies(KindNotify, "bob@dns.pt")
	if len(ns) != before+1 {
		t.Fatalf("bob: %d notices", len(ns))
	}
	n := f.open(ns[len(ns)-1], f.members["bob@dns.pt"].secret)
	mustContain(t, n.text, "change "+id+" of the key from "+old.Fingerprint()+" to "+nk.Fingerprint())
	if n.inner.Protected.Subject != "Test Directory: pending change stopped by signed mail" {
		t.Errorf("subject %q", n.inner.Protected.Subject)
	}
	// The new key hears of it too.
	if ns := f.bodies(KindNotify, "alice@dns.pt"); len(ns) != 2 {
		t.Fatalf("alice: %d notices", len(ns))
	} else {
		mustContain(t, f.open(ns[1], nk).text, "vetoed by member:"+old.Fingerprint()+"; nothing changed")
	}
	// Decided: neither VETO nor CONFIRM again.
	f.refused("bob@dns.pt", "VETO "+id+"\n", "FAILED: not vetoed: change "+id+" was vetoed already, at 2026-11-02 10:00 UTC")
	f.refused("alice@dns.pt", "CONFIRM "+id+" "+token+"\n", "FAILED: not confirmed: change "+id+" was vetoed already")
	if c, _ := f.store.Contact(f.ctx, "alice@dns.pt"); c.Key.Fingerprint != old.Fingerprint() || f.serial() != serial {
		t.Fatal("something changed")
	}
}

// A confirmed key change is applied when due (liveness.Apply, as the
// daily run does); a VETO after that is refused. One never confirmed
// expires instead.
func TestKeyRotatePendingApplied(t *testing.T) {
	f := newFixture(t)
	f.h.Config.ChangeDelay = time.Hour
	nk := f.newKey("alice@dns.pt")
	res := f.handle(f.accepted("alice@dns.pt", "KEY-ROTATE\n", keyPart(t, nk.Public())))
	id := res.Pending[0]
	m := confirmLine.FindStringSubmatch(f.open(f.bodies(liveness.KindProof, "alice@dns.pt")[0], nk).text)
	if res = f.handle(f.accepted("alice@dns.pt", "CONFIRM "+id+" "+m[2]+"\n")); res.Failed {
		t.Fatal(res.Results[0].Err)
	}
	// Bob asks for a key change and never proves it.
	bk := f.newKey("bob@dns.pt")
	bid := f.handle(f.accepted("bob@dns.pt", "KEY-ROTATE\n", keyPart(t, bk.Public()))).Pending[0]

	f.advance(time.Hour)
	apply(t, f, id, bid)
	if c, _ := f.store.Contact(f.ctx, "alice@dns.pt"); c.Key.Fingerprint != nk.Fingerprint() {
		t.Fatalf("key %s", c.Key.Fingerprint)
	}
	if p := f.pending(bid); p.State != liveness.StateExpired {
		t.Fatalf("bob's change %+v", p)
	}
	if c, _ := f.store.Contact(f.ctx, "bob@dns.pt"); c.Key.Fingerprint != f.members["bob@dns.pt"].secret.Fingerprint() {
		t.Fatal("an unproven key took effect")
	}
	f.members["alice@dns.pt"].secret = nk
	f.refused("bob@dns.pt", "VETO "+id+"\n", "FAILED: not vetoed: change "+id+" was applied already, at 2026-11-02 11:00 UTC")
	f.refused("bob@dns.pt", "VETO "+bid+"\n", "FAILED: not vetoed: change "+bid+" expired at 2026-11-02 11:00 UTC without the proof of its new key")
}

// fixtureEvidence stands for inbound.VerifyEvidence with the fixture's
// mails, which are not signed (fixture.accepted): the mail kept is one
// of them. Real signatures are checked at apply by the CLI's scripts.
func fixtureEvidence(evidence []byte, armored string, at time.Time) error {
	if !bytes.HasPrefix(evidence, []byte("From: ")) || armored == "" {
		return errors.New("not the fixture's mail")
	}
	return nil
}

// apply applies the changes ids, one transaction each, as the daily run
// does.
func apply(t *testing.T, f *fixture, ids ...string) {
	t.Helper()
	for _, id := range ids {
		actor := directory.Actor{Name: "operator:test", Evidence: liveness.ApplyEvidence(f.pending(id), "", f.now())}
		_, err := f.store.Update(f.ctx, actor, func(tx *directory.Tx) error {
			if err := tryApply(f, tx, id); err != nil {
				return err
			}
			return f.h.Decisions.Commit(tx.SQL())
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func tryApply(f *fixture, tx *directory.Tx, id string) error {
	defer f.h.Decisions.Forget(tx.SQL())
	_, err := liveness.Apply(f.ctx, tx, id, liveness.ApplyOptions{Auth: liveness.Auth{Secret: f.h.Outbox.Key, Decisions: f.h.Decisions}, By: "operator:test", Evidence: fixtureEvidence}, f.now())
	return err
}

// A VETO by mail is in the home's record of decisions: the change's row
// restored from a copy saved while it waited (its MAC with it) is
// refused as tampered, never applied; a VETO of it is refused with a
// neutral reply. A VETO in a DRY-RUN records nothing.
func TestVetoRecorded(t *testing.T) {
	f := newFixture(t)
	res := f.handle(f.accepted("alice@dns.pt", "SET EMAIL alice.silva@dns.pt\n"))
	id := res.Pending[0]
	if res = f.handle(f.accepted("bob@dns.pt", "DRY-RUN\nVETO "+id+"\n")); res.Failed || !res.DryRun {
		t.Fatalf("%+v", res)
	}
	if bad, err := liveness.Tampered(f.ctx, f.store.DB(), liveness.Auth{Secret: f.ob.Key, Decisions: f.h.Decisions}, false); err != nil || len(bad) != 0 {
		t.Fatalf("tampered after a DRY-RUN VETO: %v %v", bad, err)
	}
	db := f.store.DB()
	var mac []byte
	if err := db.QueryRowContext(f.ctx, `SELECT mac FROM pending_changes WHERE id = ?`, id).Scan(&mac); err != nil {
		t.Fatal(err)
	}
	if res = f.handle(f.accepted("bob@dns.pt", "VETO "+id+"\n")); res.Failed {
		t.Fatal(res.Results[0].Err)
	}
	if _, err := db.ExecContext(f.ctx, `UPDATE pending_changes SET state = 'waiting', decided = NULL, decided_by = NULL, reason = NULL, mac = ? WHERE id = ?`, mac, id); err != nil {
		t.Fatal(err)
	}
	if !f.pending(id).Authentic(f.ob.Key) {
		t.Fatal("the restored row fails its MAC")
	}
	// A VETO of it now: the member is told neutrally, the log (Summary)
	// gets the detail.
	res = f.handle(f.accepted("bob@dns.pt", "VETO "+id+"\n"))
	if !res.Failed || !strings.Contains(res.Summary(), "VETO refused: PENDING CHANGE TAMPERING: change "+id+": decided vetoed at") {
		t.Fatalf("%+v: %s", res, res.Summary())
	}
	reply := f.reply("bob@dns.pt").text
	mustContain(t, reply, "FAILED: not vetoed: change "+id+" cannot be decided by mail now; the operator has been told")
	if strings.Contains(reply, "TAMPERING") || strings.Contains(reply, "pending_changes") {
		t.Errorf("reply tells the internals:\n%s", reply)
	}
	f.advance(liveness.DefaultDelay + time.Hour)
	_, err := f.store.Update(f.ctx, directory.Actor{Name: "operator:test"}, func(tx *directory.Tx) error { return tryApply(f, tx, id) })
	var pe *liveness.PendingError
	if !errors.As(err, &pe) || pe.Err != liveness.ErrTampered || !strings.Contains(err.Error(), "decided vetoed at") {
		t.Fatalf("apply of the restored row: %v", err)
	}
	if c, _ := f.store.Contact(f.ctx, "alice@dns.pt"); c.Email != "alice@dns.pt" {
		t.Fatal("applied")
	}
}

// SET EMAIL is always a pending change, announced to the old and the new
// address, both encrypted to the registered key; an admin of the ccTLD
// may veto it. The same address, another contact's and the directory's
// own are refused.
func TestSetEmailPending(t *testing.T) {
	f := newFixture(t)
	serial := f.serial()
	f.refused("alice@dns.pt", "SET EMAIL Alice@dns.pt\n", "FAILED: alice@dns.pt is your address already")
	f.refused("alice@dns.pt", "SET EMAIL bob@dns.pt\n", "FAILED: bob@dns.pt is the address of another contact")
	f.refused("alice@dns.pt", "SET EMAIL "+dirAddress+"\n", "FAILED: "+dirAddress+" is the directory's address, not a contact's")
	f.refused("alice@dns.pt", "SET EMAIL ccdir+x@directory.example\n", "FAILED: ccdir+x@directory.example is delivered to the directory's address ccdir@directory.example, not a contact's")

	res := f.handle(f.accepted("alice@dns.pt", "SET EMAIL alice.silva@dns.pt\n"))
	if res.Failed || len(res.Entries) != 0 || len(res.Pending) != 1 || len(res.Challenged) != 0 || f.serial() != serial {
		t.Fatalf("%+v", res)
	}
	id := res.Pending[0]
	mustContain(t, f.reply("alice@dns.pt").text, "pending: change "+id+", your email from alice@dns.pt to alice.silva@dns.pt", "VETO "+id)
	if p := f.pending(id); p.Kind != liveness.ChangeEmail || p.NewEmail != "alice.silva@dns.pt" || p.NeedsProof() {
		t.Fatalf("%+v", p)
	}
	alice := f.members["alice@dns.pt"].secret
	ns := f.bodies(KindNotify, "alice.silva@dns.pt")
	if len(ns) != 1 {
		t.Fatalf("%d notices to the new address", len(ns))
	}
	mustContain(t, f.open(ns[0], alice).text, "asks to change the email from alice@dns.pt to alice.silva@dns.pt (change "+id+")", "VETO "+id)
	if len(f.bodies(KindNotify, "bob@dns.pt")) != 1 {
		t.Fatal("bob not told")
	}
	f.refused("alice@dns.pt", "CONFIRM "+id+" "+strings.Repeat("A", liveness.TokenLen)+"\n", "FAILED: not confirmed: change "+id+" is an email change")

	// Bob, admin of .pt, vetoes it.
	res = f.handle(f.accepted("bob@dns.pt", "VETO "+id+"\n"))
	if res.Failed {
		t.Fatal(res.Results[0].Err)
	}
	if p := f.pending(id); p.State != liveness.StateVetoed || p.DecidedBy != "member:"+f.members["bob@dns.pt"].secret.Fingerprint() {
		t.Fatalf("%+v", p)
	}
	// Alice hears of it at both addresses (the old one as a notice: she
	// did not send the veto).
	if len(f.bodies(KindNotify, "alice@dns.pt")) != 1 || len(f.bodies(KindNotify, "alice.silva@dns.pt")) != 2 {
		t.Fatal("alice not told of the veto at both addresses")
	}
	if c, _ := f.store.Contact(f.ctx, "alice@dns.pt"); c.Email != "alice@dns.pt" || f.serial() != serial {
		t.Fatal("something changed")
	}
}

// DRY-RUN of a pending change keeps nothing and sends no challenge.
func TestPendingDryRun(t *testing.T) {
	f := newFixture(t)
	res := f.handle(f.accepted("alice@dns.pt", "DRY-RUN\nKEY-ROTATE\nSET EMAIL a@dns.pt\n", keyPart(t, f.newKey("alice@dns.pt").Public())))
	if res.Failed || !res.DryRun || len(res.Pending) != 0 || f.count(liveness.KindProof) != 0 || f.count(KindNotify) != 0 {
		t.Fatalf("%+v", res)
	}
	mustContain(t, f.reply("alice@dns.pt").text, "would be pending: the change of your key", "would be pending: the change of your email")
	ps, err := liveness.ListPending(f.ctx, f.store.DB(), true)
	if err != nil || len(ps) != 0 {
		t.Fatalf("%v %+v", err, ps)
	}
}

// A mail whose later command fails keeps no pending change of it, and
// sends no challenge.
func TestPendingRolledBack(t *testing.T) {
	f := newFixture(t)
	res := f.handle(f.accepted("alice@dns.pt", "KEY-ROTATE\nREMOVE-CONTACT pt bob@dns.pt\n", keyPart(t, f.newKey("alice@dns.pt").Public())))
	if !res.Failed || len(res.Pending) != 0 || f.count(liveness.KindProof) != 0 {
		t.Fatalf("%+v", res)
	}
	if ps, _ := liveness.ListPending(f.ctx, f.store.DB(), true); len(ps) != 0 {
		t.Fatalf("%+v", ps)
	}
}

// Over the reply cap, the challenge still goes to the new key (without
// it the change could never be proven), and the old key, which gets no
// reply, gets the notice instead.
func TestPendingOverReplyCap(t *testing.T) {
	f := newFixture(t)
	f.h.Config.RepliesPerHour = 1
	f.handle(f.accepted("alice@dns.pt", "HELP\n"))
	res := f.handle(f.accepted("alice@dns.pt", "KEY-ROTATE\n", keyPart(t, f.newKey("alice@dns.pt").Public())))
	if !res.RateLimited || res.Replied || len(res.Pending) != 1 || len(res.Challenged) != 1 || f.count(liveness.KindProof) != 1 {
		t.Fatalf("%+v", res)
	}
	ns := f.bodies(KindNotify, "alice@dns.pt")
	if len(ns) != 2 {
		t.Fatalf("%d notices to alice, want the old key's and the new key's", len(ns))
	}
	mustContain(t, f.open(ns[0], f.members["alice@dns.pt"].secret).text, "asks to change the key", "VETO "+res.Pending[0])
}

// SET EMAIL refuses, when asked, every address the directory reserves
// (Tx.CheckOwnAddress): the operator's (directory.Options.Operator, with
// its +tag forms) and
// the configured bounce address with its +tag forms
// (Options.BounceAddress), as it refuses the directory's own; they were
// refused only when the change was applied, days later.
func TestSetEmailReserved(t *testing.T) {
	f := newFixtureWith(t, func(o *directory.Options) {
		o.Operator = directory.Reserved{Email: "rita@operator.example"}
		o.BounceAddress = "bounces@mail.example"
	})
	f.refused("alice@dns.pt", "SET EMAIL Rita@operator.example\n", "FAILED: rita@operator.example is the operator's address, not a contact's")
	f.refused("alice@dns.pt", "SET EMAIL rita+pt@operator.example\n", "FAILED: rita+pt@operator.example is delivered to the operator's address rita@operator.example, not a contact's")
	f.refused("alice@dns.pt", "SET EMAIL bounces+x1@mail.example\n", "FAILED: bounces+x1@mail.example is delivered to the directory's bounce address (bounces.address) bounces@mail.example, not a contact's")
	ps, err := liveness.ListPending(f.ctx, f.store.DB(), true)
	if err != nil || len(ps) != 0 {
		t.Fatalf("pending %+v, %v", ps, err)
	}
}

// A KEY-ROTATE signed by both keys takes effect at once; a change of the
// same contact that waits (a key change asked with the old key alone,
// an email change) can no longer happen, and is superseded in the same
// transaction, announced to everyone told of it, not left for VETO or
// CONFIRM until its due time. A contact removed by an admin with a
// change waiting: the same, and the ccTLD's other contacts hear so.
func TestKeyRotateSupersedesWaiting(t *testing.T) {
	f := newFixture(t)
	old := f.members["alice@dns.pt"].secret
	first := keystest.NewSecret(t, "First new key", "alice@dns.pt")
	res := f.handle(f.accepted("alice@dns.pt", "KEY-ROTATE\nSET EMAIL alice.silva@dns.pt\n", keyPart(t, first.Public())))
	if res.Failed || len(res.Pending) != 2 {
		t.Fatalf("%+v", res)
	}
	waiting := res.Pending
	nk := f.newKey("alice@dns.pt")
	notices := len(f.bodies(KindNotify, "bob@dns.pt"))
	res = f.handle(f.signedToo(f.accepted("alice@dns.pt", "KEY-ROTATE\n", keyPart(t, nk.Public())), nk.Fingerprint()))
	if res.Failed || len(res.Entries) != 1 {
		t.Fatalf("%+v (%v)", res, res.Results[0].Err)
	}
	for _, id := range waiting {
		p := f.pending(id)
		if p.State != liveness.StateSuperseded || p.DecidedBy != "member:"+old.Fingerprint() ||
			!strings.HasPrefix(p.Reason, "the key of alice@dns.pt was changed to "+nk.Fingerprint()) {
			t.Fatalf("%s: %+v", id, p)
		}
	}
	f.members["alice@dns.pt"].secret = nk // the reply goes to the new key
	mustContain(t, f.reply("alice@dns.pt").text, "done: key changed from "+old.Fingerprint(),
		"change "+waiting[0]+" of the key from "+old.Fingerprint(), "change "+waiting[1]+" of the email from alice@dns.pt to alice.silva@dns.pt superseded: the key of alice@dns.pt was changed to")
	bob := f.bodies(KindNotify, "bob@dns.pt")
	if len(bob) != notices+1 {
		t.Fatalf("%d notices to bob, want %d", len(bob), notices+1)
	}
	mustContain(t, f.open(bob[len(bob)-1], f.members["bob@dns.pt"].secret).text, "changed the directory:", "key changed from "+old.Fingerprint(),
		"decided on changes that waited:", "alice@dns.pt (pt): change "+waiting[0]+" of the key", "alice@dns.pt (pt): change "+waiting[1]+" of the email")
	// VETO and CONFIRM of them: decided already.
	f.refused("bob@dns.pt", "VETO "+waiting[0]+"\n", "not vetoed: change "+waiting[0]+" was superseded by another change")

	// Noc's change waits; Bob, admin of .pt, removes noc: superseded, told.
	res = f.handle(f.accepted("noc@dns.pt", "SET EMAIL noc2@dns.pt\n"))
	if res.Failed || len(res.Pending) != 1 {
		t.Fatalf("%+v", res)
	}
	id := res.Pending[0]
	res = f.handle(f.accepted("bob@dns.pt", "REMOVE-CONTACT pt noc@dns.pt\n"))
	if res.Failed || len(res.Entries) != 1 {
		t.Fatalf("%+v (%v)", res, res.Results[0].Err)
	}
	if p := f.pending(id); p.State != liveness.StateSuperseded || p.Reason != "noc@dns.pt was removed from the directory before the change was due" {
		t.Fatalf("%+v", p)
	}
	mustContain(t, f.reply("bob@dns.pt").text, "change "+id+" of the email from noc@dns.pt to noc2@dns.pt superseded: noc@dns.pt was removed")
	ns := f.bodies(KindNotify, "alice@dns.pt")
	mustContain(t, f.open(ns[len(ns)-1], nk).text, "noc@dns.pt (pt): change "+id+" of the email from noc@dns.pt to noc2@dns.pt superseded")
	ns = f.bodies(KindNotify, "noc2@dns.pt")
	if len(ns) != 2 { // the request, then this
		t.Fatalf("%d notices to the new address", len(ns))
	}
	mustContain(t, f.open(ns[1], f.members["noc@dns.pt"].secret).text, "superseded: noc@dns.pt was removed")
}

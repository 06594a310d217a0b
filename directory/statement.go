package directory

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// EvidenceMagic begins the evidence that a ccdir keeps of a member's
// signed mail since evidence v1 (inbound's container: the signature and
// exactly the signed data). A ccdir that writes it never keeps a whole
// mail as evidence again (it came with ca324bb, which made every member
// entry's evidence from the accepted mail): a whole mail kept after the
// first v1 evidence in a ledger is not what any ccdir wrote.
const EvidenceMagic = "ccdir evidence v1\n"

// ErrUnchecked is wrapped by an EvidenceFunc's error for evidence it
// cannot check and that is not, for that, false: a whole mail that an
// older ccdir kept encrypted to the directory key, on a copy without
// the directory's secret key. Verify reports such entries apart
// (Report.Unchecked) rather than as tampering.
var ErrUnchecked = errors.New("cannot be checked here")

// AskedFunc reads the evidence of a ledger entry that applied a change
// which waited (liveness.ParseApplyEvidence): the change's id, who asked
// for it ("member:FPR" for a signed mail) and when, and the signed mail
// it quotes. ok is false for other evidence.
type AskedFunc func(evidence []byte) (id, actor string, asked time.Time, mail []byte, ok bool)

// Statement is a member's signed mail behind a ledger entry: the entry
// made by the mail (actor member:FPR), or an entry that applied a
// change the member asked for by the mail and that waited.
type Statement struct {
	Seq     int64  // the entry
	First   int64  // the first entry of the run of entries of one mail (or one applied change) that ends with Seq
	Fpr     string // the member's key, as the actor or the applied change names it
	Pending string // the applied change's id; "" for an entry made by the mail
	Mail    []byte // the evidence: the mail as kept (evidence v1, or a whole mail by an older ccdir)
	// At is when the mail was taken: the entry's time, or when the
	// applied change was asked for.
	At time.Time
	// Contact is the contact the key was registered to just before
	// First (the one of lowest id), as the replay found it.
	Contact Contact
}

// statementOf returns the member's signed mail behind e, if any: its
// evidence for an entry of actor member:FPR; for an entry whose evidence
// asked (an AskedFunc, nil for none) reads as an applied change asked by
// member:FPR, the mail it quotes. ok is false for other entries.
func statementOf(e *Entry, asked AskedFunc) (st Statement, ok bool, err error) {
	st.Seq = e.Seq
	if fp, ok := strings.CutPrefix(e.Actor, memberActor); ok {
		st.Fpr, st.Mail = fp, e.Evidence
		if st.At, err = time.Parse(time.RFC3339, e.Time); err != nil {
			return st, true, fmt.Errorf("bad time %q", e.Time)
		}
		return st, true, nil
	}
	if asked == nil {
		return st, false, nil
	}
	id, actor, at, mail, ok := asked(e.Evidence)
	fp, member := strings.CutPrefix(actor, memberActor)
	if !ok || !member {
		return st, false, nil
	}
	st.Fpr, st.Pending, st.At, st.Mail = fp, id, at, mail
	return st, true, nil
}

// actorCheck checks the members' statements of ledger entries during a
// replay: the key that signed the mail (the actor's fingerprint, or the
// applied change's asker's) must have been registered to a contact just
// before the mail's first entry (entries of one mail follow each other
// with the same actor and evidence, and a KEY-ROTATE among them changes
// the key for those after it), and the evidence must verify with that
// key, at the time the mail was taken, and be no statement used before.
type actorCheck struct {
	evidence   EvidenceFunc
	evidenceID EvidenceIDFunc
	asked      AskedFunc          // nil: entries that applied a waiting change are not looked at
	unchecked  func(*VerifyError) // evidence the EvidenceFunc could not check (ErrUnchecked)
	statement  func(*Statement)   // each statement checked, with its contact
	used       map[string]int64   // evidence id: the first entry of the mail that used it
	actor      string
	sum        [32]byte
	run        Statement
	firstV1    int64 // the first entry whose evidence is v1
	firstV1At  time.Time
}

func newActorCheck(rc replayChecks) *actorCheck {
	return &actorCheck{evidence: rc.evidence, evidenceID: rc.evidenceID, asked: rc.asked, unchecked: rc.unchecked, statement: rc.statement}
}

func (a *actorCheck) entry(ctx context.Context, state queryer, e *Entry) error {
	st, ok, err := statementOf(e, a.asked)
	if err != nil {
		return err
	}
	if !ok || (len(e.Evidence) == 0 && (e.Redacted() || e.EvidenceErased())) {
		// An erasure took the mail (checkCover checked it covers this
		// entry): there is nothing to check it against.
		a.actor = ""
		return nil
	}
	sum := sha256.Sum256(e.Evidence)
	if a.actor == e.Actor && a.sum == sum {
		if a.statement != nil {
			run := a.run
			run.Seq = e.Seq
			a.statement(&run)
		}
		return nil // a later entry of the same mail
	}
	a.actor, a.sum = "", sum
	st.First = e.Seq
	if len(st.Mail) == 0 {
		if st.Pending != "" {
			return fmt.Errorf("applies change %s asked by member:%s, but keeps no signed mail it was asked with", st.Pending, st.Fpr)
		}
		return errors.New("made by a member, but keeps no signed mail as evidence")
	}
	v1 := bytes.HasPrefix(st.Mail, []byte(EvidenceMagic))
	switch {
	case v1 && a.firstV1 == 0:
		a.firstV1, a.firstV1At = e.Seq, st.At
	case !v1 && a.firstV1 != 0 && (st.Pending == "" || !st.At.Before(a.firstV1At)):
		// A change that waited may have been asked by a mail an older
		// ccdir kept whole; one asked after the first v1 evidence not.
		return fmt.Errorf("its evidence is a whole mail, as only a ccdir older than evidence v1 kept it, but entry %d already kept evidence v1, and a ccdir that writes it never keeps whole mails", a.firstV1)
	}
	var c Contact
	cs, err := readContacts(ctx, state, `WHERE upper(key_fingerprint) = upper(?)`, st.Fpr)
	if err != nil {
		return err
	}
	if len(cs) == 0 {
		return fmt.Errorf("made by key %s, which was not registered to any contact at entry %d", st.Fpr, e.Seq-1)
	}
	c = slices.MinFunc(cs, func(x, y Contact) int { return cmp.Compare(x.ID, y.ID) })
	if c.Key == nil {
		return fmt.Errorf("made by key %s, which was not registered to any contact at entry %d", st.Fpr, e.Seq-1)
	}
	armored := c.Key.Armored
	if a.evidence != nil {
		err := a.evidence(st.Mail, armored, st.At)
		switch {
		case errors.Is(err, ErrUnchecked) && a.unchecked != nil:
			a.unchecked(&VerifyError{Seq: e.Seq, Reason: fmt.Sprintf("its evidence (key %s, registered at entry %d) %v", st.Fpr, e.Seq-1, err)})
		case err != nil && st.Pending != "":
			return fmt.Errorf("applies change %s, whose signed mail does not verify with key %s, registered at entry %d: %v", st.Pending, st.Fpr, e.Seq-1, err)
		case err != nil:
			return fmt.Errorf("its evidence does not verify with key %s, registered at entry %d: %v", st.Fpr, e.Seq-1, err)
		}
	}
	if a.evidenceID != nil {
		// The entries of one mail follow each other; the same signed
		// statement again later is a replay (seen_signatures deleted).
		// A copy byte for byte right after its first use reads as one
		// mail here; process refuses it (inbound.MarkSeen). One mail
		// may ask for changes made at once and for changes that wait:
		// an applied change's mail is known by the change's id too.
		id, err := a.evidenceID(st.Mail, st.Fpr, armored, st.At)
		if err != nil && !errors.Is(err, ErrUnchecked) {
			return fmt.Errorf("its evidence cannot be read: %v", err)
		}
		if id != "" && st.Pending != "" {
			id = "pending " + st.Pending + " " + id
		}
		if first, ok := a.used[id]; ok && id != "" {
			return fmt.Errorf("its evidence is the signed mail of entry %d again: a mail used twice", first)
		}
		if id != "" {
			if a.used == nil {
				a.used = map[string]int64{}
			}
			a.used[id] = e.Seq
		}
	}
	st.Contact = c
	a.run = st
	if a.statement != nil {
		run := st
		a.statement(&run)
	}
	a.actor = e.Actor
	return nil
}

// Report is what Verify found beside the head: the entries whose
// evidence could not be checked here (ErrUnchecked), each named.
type Report struct {
	Head      Head
	Unchecked []*VerifyError
}

// MemberStatement returns the member's signed mail behind ledger entry
// seq, with the contact its key was registered to then: what ccdir log
// --evidence N -o hands out. The directory is checked up to its head
// (Checked: the hash chain, the head's signature, the state), and the
// members' statements up to seq as Verify checks them (the Options'
// Evidence, EvidenceID and Asked), so that a statement laundered later
// does not keep an auditor from taking out the genuine ones before it.
// An entry that keeps no member's mail gives ErrNoStatement; a
// directory that does not verify, a *TamperError or *VerifyError.
func (s *Store) MemberStatement(ctx context.Context, fpr string, verify VerifyFunc, seq int64) (*Statement, Report, error) {
	var rep Report
	if _, err := s.Checked(ctx, fpr, verify); err != nil {
		return nil, rep, err
	}
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, rep, err
	}
	defer tx.Rollback()
	fresh, err := memoryDB("ccdir-statement")
	if err != nil {
		return nil, rep, err
	}
	defer fresh.Close()
	ftx, err := signedTx(ctx, fresh)
	if err != nil {
		return nil, rep, err
	}
	defer ftx.Rollback()
	var found *Statement
	errDone := errors.New("done")
	rc := replayChecks{evidence: s.opts.Evidence, evidenceID: s.opts.EvidenceID, asked: s.opts.Asked,
		keyVerifier: s.opts.KeyVerifier, split: s.opts.SplitSignatures, fingerprints: s.opts.Fingerprints,
		unchecked: func(e *VerifyError) { rep.Unchecked = append(rep.Unchecked, e) },
		statement: func(st *Statement) {
			if st.Seq == seq {
				found = st
			}
		},
		after: func(_ queryer, e *Entry) error {
			if e.Seq >= seq {
				return errDone
			}
			return nil
		}}
	rep.Head, err = replay(ctx, tx, ftx, fpr, verify, rc)
	if err != nil && !errors.Is(err, errDone) {
		return nil, rep, err
	}
	if found == nil {
		return nil, rep, ErrNoStatement
	}
	return found, rep, nil
}

// ErrNoStatement: the entry keeps no member's signed mail.
var ErrNoStatement = errors.New("the entry keeps no member's signed mail")

package liveness

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ccdir/ccdir/directory"
)

// DefaultDelay is how long a pending change waits before it is applied
// (changes.delay).
const DefaultDelay = 72 * time.Hour

// Kinds of pending change.
const (
	ChangeKey   = "key"   // a new key for the contact
	ChangeEmail = "email" // a new address for the contact
)

// States of a pending change. Only a waiting change can be decided; every
// other state is final.
const (
	StateWaiting    = "waiting"    // announced; applied at Due unless stopped
	StateApplied    = "applied"    // its ledger entry is written
	StateVetoed     = "vetoed"     // stopped by a signed VETO
	StateCancelled  = "cancelled"  // stopped by the operator
	StateExpired    = "expired"    // due, but the proof of possession never came
	StateSuperseded = "superseded" // the contact's address or key changed meanwhile (or it was removed)
)

// Pending is one guarded change of a contact's key or email: asked for,
// announced, and applied only after changes.delay unless stopped (Veto,
// Cancel) or approved earlier by the operator. It lives in the
// operational table pending_changes, not in the signed state: nothing of
// it is a ledger entry until Apply writes the change itself.
type Pending struct {
	ID        string // "chg-" and 10 characters of [a-z2-7]; set by Propose
	ContactID int64
	// Email and Fingerprint are the contact as it was when the change was
	// asked for: Apply applies it only to that contact still so.
	// Fingerprint is "" for a contact without a key.
	Email, Fingerprint string
	Kind               string         // ChangeKey or ChangeEmail
	NewEmail           string         // ChangeEmail: the new address
	NewKey             *directory.Key // ChangeKey: the new key
	NewFingerprint     string         // ChangeKey: NewKey's fingerprint (set by Propose)
	// Actor is the directory actor who asked: "member:FPR" (a signed
	// mail), "operator:NAME".
	Actor    string
	Evidence []byte // the signed mail that asked; nil for the operator
	// Requested is when it was asked (set by Propose to now); Due when it
	// is applied (the caller sets it: now + changes.delay).
	Requested, Due time.Time
	// ProofHash is ProofHash(token) of the possession token sent
	// encrypted to the new key; "" when no proof is needed. Proven is
	// when the token came back (Prove); zero until then. A change that
	// needs a proof and is not proven at Due expires.
	ProofHash string
	Proven    time.Time
	State     string
	Decided   time.Time // when it left StateWaiting; zero while waiting
	DecidedBy string    // who decided: an actor text, "changes.delay" for the daily run
	Reason    string    // why it expired or was superseded
}

// NeedsProof reports whether the change waits for a proof of possession
// of its new key that has not come.
func (p Pending) NeedsProof() bool { return p.ProofHash != "" && p.Proven.IsZero() }

// Old is what the change replaces, as a change names it: the address,
// or the key's fingerprint ("none").
func (p Pending) Old() string {
	if p.Kind == ChangeEmail {
		return p.Email
	}
	if p.Fingerprint == "" {
		return "none"
	}
	return p.Fingerprint
}

// What names the change: "the key from A to B", "the email from a to
// b".
func (p Pending) What() string {
	if p.Kind == ChangeEmail {
		return fmt.Sprintf("the email from %s to %s", p.Email, p.NewEmail)
	}
	old := "none"
	if p.Fingerprint != "" {
		old = p.Fingerprint
	}
	return fmt.Sprintf("the key from %s to %s", old, KeyText(p.NewKey))
}

// Line is what a notice says of p in its state (Notices.AnnouncePending),
// the one wording of it in notices by mail and by the operator alike.
func (p Pending) Line() string {
	switch p.State {
	case StateWaiting:
		return fmt.Sprintf("asks to change %s (change %s)", p.What(), p.ID)
	case StateApplied:
		return fmt.Sprintf("change %s applied: %s, asked by %s at %s", p.ID, p.What(), p.Actor, p.Requested.UTC().Format(timeFormat))
	case StateVetoed, StateCancelled:
		return fmt.Sprintf("change %s of %s %s by %s; nothing changed", p.ID, p.What(), p.State, p.DecidedBy)
	}
	return fmt.Sprintf("change %s of %s %s: %s; nothing changed", p.ID, p.What(), p.State, p.Reason)
}

// Errors of the pending changes: why an operation is refused. Each comes
// wrapped in a *PendingError, which names the change.
var (
	ErrChangeUnknown  = errors.New("no such change")
	ErrChangeDecided  = errors.New("the change no longer waits")
	ErrChangeWaits    = errors.New("a change of the same kind waits already")
	ErrProofWrong     = errors.New("the token does not prove the change")
	ErrProofDone      = errors.New("the change is proven already")
	ErrProofMissing   = errors.New("the change waits for its proof of possession of the new key")
	ErrChangeNotValid = errors.New("the change is not valid")
)

// PendingError is a refused operation on a pending change: Err is one of
// the ErrChange/ErrProof errors; ID the change; State and At its state
// and when it was decided (ErrChangeDecided) or when it is due
// (ErrChangeWaits, ErrProofMissing); Detail what is wrong
// (ErrChangeNotValid).
type PendingError struct {
	Err    error
	ID     string
	State  string
	At     time.Time
	Detail string
}

func (e *PendingError) Error() string {
	switch e.Err {
	case ErrChangeUnknown:
		return fmt.Sprintf("no pending change %s", e.ID)
	case ErrChangeDecided:
		return fmt.Sprintf("change %s was %s at %s: it no longer waits", e.ID, e.State, e.At.Format(timeFormat))
	case ErrChangeWaits:
		return fmt.Sprintf("change %s of the same kind waits until %s", e.ID, e.At.Format(timeFormat))
	case ErrProofWrong, ErrProofDone:
		return fmt.Sprintf("change %s: %v", e.ID, e.Err)
	case ErrProofMissing:
		return fmt.Sprintf("change %s waits for its proof of possession of the new key (due %s)", e.ID, e.At.Format(timeFormat))
	case ErrChangeNotValid:
		return fmt.Sprintf("pending change: %s", e.Detail)
	}
	return e.Err.Error()
}

func (e *PendingError) Unwrap() error { return e.Err }

// ChangeIDPrefix starts every change id.
const ChangeIDPrefix = "chg-"

// changeIDLen is the number of random characters of a change id.
const changeIDLen = 10

// idAlphabet is the alphabet of change ids (RFC 4648 base32, lowercase):
// an id survives being read aloud, retyped and case-folded by a mailer.
const idAlphabet = "abcdefghijklmnopqrstuvwxyz234567"

// testOnlyRand, when set, is where change ids come from (tests).
var testOnlyRand io.Reader

func newChangeID() (string, error) {
	r := testOnlyRand
	if r == nil {
		r = rand.Reader
	}
	var b [changeIDLen]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("liveness: change id: %w", err)
	}
	for i := range b {
		b[i] = idAlphabet[b[i]&31]
	}
	return ChangeIDPrefix + string(b[:]), nil
}

// ValidChangeID reports whether s has the form of a change id (not
// whether it is one): "chg-" and 10 characters of [a-z2-7], all of them
// token characters (letters, digits, '-', '_'), though shorter than a
// ping token (ValidToken).
func ValidChangeID(s string) bool {
	rest, ok := strings.CutPrefix(s, ChangeIDPrefix)
	if !ok || len(rest) != changeIDLen {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if !strings.ContainsRune(idAlphabet, rune(rest[i])) {
			return false
		}
	}
	return true
}

// ProofHash is what pending_changes keeps of a possession token: its
// SHA-256, hex (as the pings table keeps ping tokens). The token itself
// is only in the challenge sent encrypted to the new key.
func ProofHash(token string) string { return hashToken(token) }

// Propose records, in tx, the change p asked for at now: it sets p.ID,
// p.Requested (now), p.NewFingerprint (of a key change) and p.State
// (waiting). The caller has set ContactID, Email, Fingerprint (the
// contact as it is now), Kind, NewEmail or NewKey, Actor, Evidence, Due
// (now + changes.delay) and, when the new key's possession is not
// proven yet, ProofHash. A change of the same kind that waits for the
// same contact is refused (a *PendingError with ErrChangeWaits naming
// it): VETO it or cancel it first. It writes only pending_changes: the
// caller announces it (Notices.AnnouncePending) in the same
// transaction.
func Propose(ctx context.Context, tx *sql.Tx, p *Pending, now time.Time) error {
	invalid := func(format string, args ...any) error {
		return &PendingError{Err: ErrChangeNotValid, Detail: fmt.Sprintf(format, args...)}
	}
	switch {
	case p.ContactID == 0 || p.Email == "":
		return invalid("no contact")
	case p.Actor == "":
		return invalid("no actor")
	case !p.Due.After(now):
		return invalid("due %s is not after now", p.Due.UTC().Format(timeFormat))
	}
	var newKey sql.NullString
	switch p.Kind {
	case ChangeKey:
		if p.NewKey == nil || p.NewKey.Fingerprint == "" || p.NewKey.Armored == "" {
			return invalid("a key change without a key")
		}
		if strings.EqualFold(p.NewKey.Fingerprint, p.Fingerprint) {
			return invalid("key %s is the registered key of %s", p.NewKey.Fingerprint, p.Email)
		}
		if p.NewEmail != "" {
			return invalid("a key change with a new address")
		}
		b, err := json.Marshal(p.NewKey)
		if err != nil {
			return err
		}
		newKey = sql.NullString{String: string(b), Valid: true}
		p.NewFingerprint = p.NewKey.Fingerprint
	case ChangeEmail:
		if p.NewKey != nil {
			return invalid("an email change with a key")
		}
		e, err := directory.NormalizeEmail(p.NewEmail)
		if err != nil {
			return invalid("%v", err)
		}
		if e == p.Email {
			return invalid("%s is the registered address", e)
		}
		p.NewEmail, p.NewFingerprint = e, ""
	default:
		return invalid("unknown kind %q", p.Kind)
	}
	rows, err := tx.QueryContext(ctx, selectPending+` WHERE contact_id = ? AND kind = ? AND state = ?`, p.ContactID, p.Kind, StateWaiting)
	if err != nil {
		return err
	}
	waiting, err := scanPending(rows)
	if err != nil {
		return err
	}
	if len(waiting) > 0 {
		return &PendingError{Err: ErrChangeWaits, ID: waiting[0].ID, State: StateWaiting, At: waiting[0].Due}
	}
	p.Requested, p.State = now.UTC().Truncate(time.Second), StateWaiting
	p.Proven, p.Decided, p.DecidedBy, p.Reason = time.Time{}, time.Time{}, "", ""
	// An id already used (by any change, decided or not) is never reused:
	// draw again.
	for try := 0; ; try++ {
		id, err := newChangeID()
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO pending_changes
			(id, contact_id, email, fingerprint, kind, new_email, new_key, new_fingerprint, actor, evidence, requested, due, proof_hash, state)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			id, p.ContactID, p.Email, p.Fingerprint, p.Kind, nullText(p.NewEmail), newKey, nullText(p.NewFingerprint),
			p.Actor, p.Evidence, formatTime(p.Requested), formatTime(p.Due), nullText(p.ProofHash), StateWaiting)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 1 {
			p.ID = id
			return nil
		}
		if try == 8 {
			return fmt.Errorf("liveness: no free change id after %d tries", try+1)
		}
	}
}

func nullText(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func nullTime(t time.Time) sql.NullString {
	if t.IsZero() {
		return sql.NullString{}
	}
	return sql.NullString{String: formatTime(t), Valid: true}
}

const selectPending = `SELECT id, contact_id, email, fingerprint, kind, new_email, new_key, new_fingerprint, actor, evidence,
	requested, due, proof_hash, proven, state, decided, decided_by, reason FROM pending_changes`

func scanPending(rows *sql.Rows) ([]Pending, error) {
	defer rows.Close()
	var out []Pending
	for rows.Next() {
		var (
			p                                         Pending
			newEmail, newKey, newFpr, proof           sql.NullString
			requested, due                            string
			proven, decided, decidedBy, reason, state sql.NullString
		)
		if err := rows.Scan(&p.ID, &p.ContactID, &p.Email, &p.Fingerprint, &p.Kind, &newEmail, &newKey, &newFpr, &p.Actor, &p.Evidence,
			&requested, &due, &proof, &proven, &state, &decided, &decidedBy, &reason); err != nil {
			return nil, err
		}
		p.NewEmail, p.NewFingerprint, p.ProofHash = newEmail.String, newFpr.String, proof.String
		if newKey.Valid {
			p.NewKey = new(directory.Key)
			if err := json.Unmarshal([]byte(newKey.String), p.NewKey); err != nil {
				return nil, fmt.Errorf("liveness: change %s: new key: %w", p.ID, err)
			}
		}
		p.Requested, p.Due = parseTime(requested), parseTime(due)
		if proven.Valid {
			p.Proven = parseTime(proven.String)
		}
		if decided.Valid {
			p.Decided = parseTime(decided.String)
		}
		p.State, p.DecidedBy, p.Reason = state.String, decidedBy.String, reason.String
		out = append(out, p)
	}
	return out, rows.Err()
}

// GetPending reads the change id; an unknown id is a *PendingError with
// ErrChangeUnknown.
func GetPending(ctx context.Context, q Queryer, id string) (Pending, error) {
	rows, err := q.QueryContext(ctx, selectPending+` WHERE id = ?`, id)
	if err != nil {
		return Pending{}, err
	}
	ps, err := scanPending(rows)
	if err != nil {
		return Pending{}, err
	}
	if len(ps) == 0 {
		return Pending{}, &PendingError{Err: ErrChangeUnknown, ID: id}
	}
	return ps[0], nil
}

// ListPending lists the waiting changes, or with all every change, the
// oldest first.
func ListPending(ctx context.Context, q Queryer, all bool) ([]Pending, error) {
	query := selectPending + ` WHERE state = ? ORDER BY requested, rowid`
	args := []any{StateWaiting}
	if all {
		query, args = selectPending+` ORDER BY requested, rowid`, nil
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return scanPending(rows)
}

// DueChanges lists the waiting changes whose due time has come at now,
// the earliest due first: what the daily run applies (Apply).
func DueChanges(ctx context.Context, q Queryer, now time.Time) ([]Pending, error) {
	rows, err := q.QueryContext(ctx, selectPending+` WHERE state = ? AND due <= ? ORDER BY due, rowid`, StateWaiting, formatTime(now))
	if err != nil {
		return nil, err
	}
	return scanPending(rows)
}

// waiting reads the change id for a decision: it must wait.
func waiting(ctx context.Context, tx *sql.Tx, id string) (Pending, error) {
	p, err := GetPending(ctx, tx, id)
	if err != nil {
		return p, err
	}
	if p.State != StateWaiting {
		return p, &PendingError{Err: ErrChangeDecided, ID: p.ID, State: p.State, At: p.Decided}
	}
	return p, nil
}

// decide moves the waiting change p to state, at now, by by.
func decide(ctx context.Context, tx *sql.Tx, p *Pending, state, by, reason string, now time.Time) error {
	now = now.UTC().Truncate(time.Second)
	res, err := tx.ExecContext(ctx, `UPDATE pending_changes SET state = ?, decided = ?, decided_by = ?, reason = ? WHERE id = ? AND state = ?`,
		state, formatTime(now), by, nullText(reason), p.ID, StateWaiting)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("liveness: change %s: decision not recorded (%d rows, %v)", p.ID, n, err)
	}
	p.State, p.Decided, p.DecidedBy, p.Reason = state, now, by, reason
	return nil
}

// Veto stops the waiting change id, at now; by is who vetoed (an actor
// text: "member:FPR"). Whether by may veto it (the contact's registered
// key, or an admin contact of one of its ccTLDs) is for the caller to
// decide, which knows the signer (mailcmd). A change that does not wait
// is a *PendingError (ErrChangeUnknown, ErrChangeDecided) and nothing
// changes. The caller announces the veto (Notices.AnnouncePending).
func Veto(ctx context.Context, tx *sql.Tx, id, by string, now time.Time) (Pending, error) {
	p, err := waiting(ctx, tx, id)
	if err != nil {
		return p, err
	}
	return p, decide(ctx, tx, &p, StateVetoed, by, "", now)
}

// Cancel stops the waiting change id for the operator by (an actor text:
// "operator:NAME"), at now; as Veto otherwise.
func Cancel(ctx context.Context, tx *sql.Tx, id, by string, now time.Time) (Pending, error) {
	p, err := waiting(ctx, tx, id)
	if err != nil {
		return p, err
	}
	return p, decide(ctx, tx, &p, StateCancelled, by, "", now)
}

// Prove records the proof of possession of the new key of the waiting
// change id: tokenHash is ProofHash of the token as it came back (in a
// CONFIRM). It must match the change's, before the change is due, once;
// anything else is a *PendingError (ErrChangeUnknown, ErrChangeDecided,
// ErrProofWrong, ErrProofDone, ErrProofMissing past due) and changes
// nothing. A proven change still waits for its due time: the delay is
// for a veto, the proof for the key.
func Prove(ctx context.Context, tx *sql.Tx, id, tokenHash string, now time.Time) (Pending, error) {
	p, err := waiting(ctx, tx, id)
	if err != nil {
		return p, err
	}
	switch {
	case p.ProofHash == "" || subtle.ConstantTimeCompare([]byte(strings.ToLower(tokenHash)), []byte(p.ProofHash)) != 1:
		return p, &PendingError{Err: ErrProofWrong, ID: p.ID}
	case !p.Proven.IsZero():
		return p, &PendingError{Err: ErrProofDone, ID: p.ID, At: p.Proven}
	case !now.Before(p.Due):
		return p, &PendingError{Err: ErrProofMissing, ID: p.ID, At: p.Due}
	}
	now = now.UTC().Truncate(time.Second)
	res, err := tx.ExecContext(ctx, `UPDATE pending_changes SET proven = ? WHERE id = ? AND state = ? AND proven IS NULL`, formatTime(now), p.ID, StateWaiting)
	if err != nil {
		return p, err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return p, fmt.Errorf("liveness: change %s: proof not recorded (%d rows, %v)", p.ID, n, err)
	}
	p.Proven = now
	return p, nil
}

// Apply decides the waiting change id in t, at now, for by (the
// operator's actor text), and returns it as it leaves it:
//
//   - StateSuperseded, nothing applied, when the contact no longer has
//     the address and key it had when the change was asked for (it was
//     removed, or its address or key changed meanwhile: by another
//     change applied first too, so of a key and an email change that
//     wait together only the first applied takes effect), when the new
//     key has expired, or when the directory refuses the change now
//     (Reason says why);
//   - StateExpired, nothing applied, when the change needs a proof of
//     possession of its new key that never came and it is due; before
//     it is due that is a *PendingError (ErrProofMissing) unless
//     confirmed (the operator checked the key otherwise: approve
//     --confirmed);
//   - StateApplied, with the change made through t (Tx.SetKey,
//     Tx.UpdateContact: one ledger entry, by t's actor, whose evidence
//     is the caller's (ApplyEvidence) and which t.ContactChanges lists
//     for the notices).
//
// Apply does not look at Due otherwise: the daily run applies what
// DueChanges lists, the operator's approve applies earlier. A change
// that does not wait is a *PendingError (ErrChangeUnknown,
// ErrChangeDecided). Every outcome is announced by the caller in t.
func Apply(ctx context.Context, t *directory.Tx, id, by string, confirmed bool, now time.Time) (Pending, error) {
	tx := t.SQL()
	p, err := waiting(ctx, tx, id)
	if err != nil {
		return p, err
	}
	if p.NeedsProof() && !confirmed {
		if now.Before(p.Due) {
			return p, &PendingError{Err: ErrProofMissing, ID: p.ID, At: p.Due}
		}
		return p, decide(ctx, tx, &p, StateExpired, by, "the new key's possession was not proven by "+p.Due.UTC().Format(timeFormat), now)
	}
	c, err := t.Contact(p.Email)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return p, decide(ctx, tx, &p, StateSuperseded, by, fmt.Sprintf("%s is no longer in the directory", p.Email), now)
	case err != nil:
		return p, err
	case c.ID != p.ContactID:
		return p, decide(ctx, tx, &p, StateSuperseded, by, fmt.Sprintf("%s is another contact now", p.Email), now)
	case !strings.EqualFold(fingerprint(c.Key), p.Fingerprint):
		return p, decide(ctx, tx, &p, StateSuperseded, by, fmt.Sprintf("the key of %s changed meanwhile (now %s)", p.Email, KeyText(c.Key)), now)
	}
	if exp, ok := p.NewKey.ExpiresAt(); ok && !now.Before(exp) {
		return p, decide(ctx, tx, &p, StateSuperseded, by, "the new key expired at "+exp.UTC().Format(timeFormat), now)
	}
	switch p.Kind {
	case ChangeKey:
		_, err = t.SetKey(p.Email, p.NewKey)
	case ChangeEmail:
		_, err = t.UpdateContact(p.Email, func(c *directory.Contact) error { c.Email = p.NewEmail; return nil })
	default:
		err = &PendingError{Err: ErrChangeNotValid, ID: p.ID, Detail: "unknown kind " + p.Kind}
	}
	var de *directory.Error
	var fe *directory.FieldError
	if errors.As(err, &de) || errors.As(err, &fe) || errors.Is(err, directory.ErrUnchanged) {
		return p, decide(ctx, tx, &p, StateSuperseded, by, "refused by the directory now: "+err.Error(), now)
	}
	if err != nil {
		return p, err
	}
	return p, decide(ctx, tx, &p, StateApplied, by, "", now)
}

// Superseded is a waiting change that SupersedeWaiting decided, with
// the contact as it was before the transaction (its address, key and
// roles: whom the change's notices go to, as AnnouncePending's c).
type Superseded struct {
	Pending Pending
	Contact directory.Contact
}

// SupersedeWaiting supersedes, in t at now for by (an actor text), every
// waiting change of a contact that t's changes so far
// (Tx.ContactChanges) have made impossible: the contact was removed, or
// its address or key was changed at once (a KEY-ROTATE signed by both
// keys, the operator's --confirmed, another change applied), so that
// the change no longer finds the address and key it was asked for and
// Apply would supersede it when due. Deciding it now, in the same
// transaction, means nobody is asked to VETO or CONFIRM a change that
// can no longer happen. A change of either kind is concerned (an email
// change waits for the key it was asked with too); one still possible
// (another field changed, the same key refreshed) keeps waiting. The
// caller announces each (Notices.AnnouncePending with its Contact) in
// t. Called again in t, it finds only what later changes made
// impossible.
func SupersedeWaiting(ctx context.Context, t *directory.Tx, by string, now time.Time) ([]Superseded, error) {
	tx := t.SQL()
	var out []Superseded
	for _, ch := range t.ContactChanges() {
		if ch.Before == nil {
			continue // added by t: nothing of it waits
		}
		rows, err := tx.QueryContext(ctx, selectPending+` WHERE contact_id = ? AND state = ? ORDER BY requested, rowid`, ch.Before.ID, StateWaiting)
		if err != nil {
			return out, err
		}
		ps, err := scanPending(rows)
		if err != nil {
			return out, err
		}
		for _, p := range ps {
			why := changedReason(&p, ch.After)
			if why == "" {
				continue
			}
			if err := decide(ctx, tx, &p, StateSuperseded, by, why+" before the change was due", now); err != nil {
				return out, err
			}
			out = append(out, Superseded{Pending: p, Contact: *ch.Before})
		}
	}
	return out, nil
}

// changedReason says why p can no longer be applied to the contact as
// it is now (nil: removed), or "" when it still can.
func changedReason(p *Pending, now *directory.Contact) string {
	switch {
	case now == nil:
		return fmt.Sprintf("%s was removed from the directory", p.Email)
	case now.Email != p.Email:
		return fmt.Sprintf("the address of %s was changed to %s", p.Email, now.Email)
	case !strings.EqualFold(fingerprint(now.Key), p.Fingerprint):
		return fmt.Sprintf("the key of %s was changed to %s", p.Email, KeyText(now.Key))
	}
	return ""
}

// ApplyEvidence is the evidence of the ledger entry that applies p at
// now: what happened to it, then the signed mail that asked for it, if
// any, so that the entry keeps what it rests on. how, when not empty, is
// how the operator confirmed the change (approve --confirmed).
func ApplyEvidence(p Pending, how string, now time.Time) []byte {
	var b strings.Builder
	now = now.UTC().Truncate(time.Second)
	early := ""
	if now.Before(p.Due) {
		early = " approved by the operator and"
	}
	fmt.Fprintf(&b, "pending change %s asked by %s at %s, announced, not vetoed,%s applied at %s (due %s)",
		p.ID, p.Actor, formatTime(p.Requested), early, formatTime(now), formatTime(p.Due))
	if !p.Proven.IsZero() {
		fmt.Fprintf(&b, "; possession of the new key proven at %s", formatTime(p.Proven))
	}
	if how != "" {
		fmt.Fprintf(&b, "; confirmed by the operator: %s", how)
	}
	b.WriteString("\n")
	if len(p.Evidence) > 0 {
		b.WriteString("\n")
		b.Write(p.Evidence)
	}
	return []byte(b.String())
}

package liveness

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
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

	// sum is the SHA-256 of the row as stored (every column but mac, see
	// rowSum), mac the stored MAC of it; bad why the row cannot be read
	// (an unreadable new key), checked after its MAC.
	sum [sha256.Size]byte
	mac []byte
	bad error
}

// Authentic reports whether p, as read from pending_changes, carries the
// MAC of every one of its stored fields under secret (the home's outbox
// key): it was written by a ccdir holding the key, through Propose,
// Prove and the decisions, and not changed since. A row changed in the
// database (a decided change set back to waiting, another due time or
// key, a row written there) or written by a ccdir older than the MAC is
// not authentic and is never applied, proven or decided.
func (p Pending) Authentic(secret []byte) bool {
	return len(secret) >= minSecret && len(p.mac) == sha256.Size && hmac.Equal(p.mac, rowMAC(secret, p.sum))
}

// minSecret is the shortest secret rows are authenticated with.
const minSecret = 16

// rowMAC is the MAC of a row whose stored fields have the SHA-256 sum:
// HMAC-SHA256 under secret, apart (by its first bytes) from the outbox's
// MACs and the tokens made with the same key.
func rowMAC(secret []byte, sum [sha256.Size]byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte("ccdir pending change v1\x00"))
	h.Write(sum[:])
	return h.Sum(nil)
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
	// ErrChangeMoved: the change's row is not what the caller read
	// before its transaction (ApplyOptions.Read): decided on from
	// another copy, it is not decided.
	ErrChangeMoved = errors.New("the change's row changed since it was read")
	// ErrTampered: the change's row fails authentication (Authentic), or
	// the signed mail a member asked with no longer verifies.
	ErrTampered = errors.New("the change fails authentication: possible database tampering")
	// ErrNotTampered: Discard was asked for a change whose row is
	// authentic (it is cancelled, not discarded).
	ErrNotTampered = errors.New("the change's row is authentic: cancel it instead")
	// ErrNoSecret: no secret to authenticate pending changes with.
	ErrNoSecret = errors.New("liveness: no secret to authenticate pending changes with (the home's outbox key)")
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
	case ErrNotTampered, ErrChangeMoved:
		return fmt.Sprintf("change %s: %v", e.ID, e.Err)
	case ErrTampered:
		if e.Detail != "" {
			return fmt.Sprintf("PENDING CHANGE TAMPERING: change %s: %s: possible database tampering; it is never applied or proven, only discarded (pending cancel --tampered)", e.ID, e.Detail)
		}
		return fmt.Sprintf("PENDING CHANGE TAMPERING: change %s fails authentication (its row in pending_changes was not written by this ccdir, or was changed since): possible database tampering; it is never applied or proven, only discarded (pending cancel --tampered)", e.ID)
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
// transaction. The row gets the MAC under secret (the home's outbox
// key) of every field it stores (Authentic), as every later decision
// on it does.
func Propose(ctx context.Context, tx *sql.Tx, a Auth, p *Pending, now time.Time) error {
	secret := a.Secret
	if len(secret) < minSecret {
		return ErrNoSecret
	}
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
	if len(waiting) > 0 && !waiting[0].Authentic(secret) {
		// Never decided, so it blocks the kind for the contact: a change
		// made at once (both keys, --confirmed) is what is left.
		return &PendingError{Err: ErrTampered, ID: waiting[0].ID}
	}
	if len(waiting) > 0 {
		if err := a.check(waiting[0]); err != nil {
			return err
		}
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
			_, err := seal(ctx, tx, secret, id)
			return err
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
	requested, due, proof_hash, proven, state, decided, decided_by, reason, mac FROM pending_changes`

// scanPending reads the rows of selectPending. A row whose new key
// cannot be read is returned with the reason (Pending.bad), for its
// decision to refuse it: one bad row does not hide the others.
func scanPending(rows *sql.Rows) ([]Pending, error) {
	defer rows.Close()
	var out []Pending
	for rows.Next() {
		var (
			p                                                         Pending
			email, fpr, kind, newEmail, newKey, newFpr, actor, proof  sql.NullString
			requested, due, proven, decided, decidedBy, reason, state sql.NullString
			id                                                        string
			contactID                                                 int64
			evidence                                                  []byte
		)
		if err := rows.Scan(&id, &contactID, &email, &fpr, &kind, &newEmail, &newKey, &newFpr, &actor, &evidence,
			&requested, &due, &proof, &proven, &state, &decided, &decidedBy, &reason, &p.mac); err != nil {
			return nil, err
		}
		p.sum = rowSum(id, contactID, evidence, email, fpr, kind, newEmail, newKey, newFpr, actor,
			requested, due, proof, proven, state, decided, decidedBy, reason)
		p.ID, p.ContactID, p.Email, p.Fingerprint, p.Kind, p.Actor = id, contactID, email.String, fpr.String, kind.String, actor.String
		if len(evidence) > 0 {
			p.Evidence = evidence
		}
		p.NewEmail, p.NewFingerprint, p.ProofHash = newEmail.String, newFpr.String, proof.String
		if newKey.Valid {
			p.NewKey = new(directory.Key)
			if err := json.Unmarshal([]byte(newKey.String), p.NewKey); err != nil {
				p.NewKey, p.bad = nil, fmt.Errorf("its new key cannot be read: %v", err)
			}
		}
		p.Requested, p.Due = parseTime(requested.String), parseTime(due.String)
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

// rowSum is the SHA-256 of a row's stored fields, every column of
// pending_changes but mac, each as stored: NULL apart from empty text,
// every value prefixed by its length.
func rowSum(id string, contactID int64, evidence []byte, text ...sql.NullString) [sha256.Size]byte {
	h := sha256.New()
	field := func(null bool, b []byte) {
		var n [9]byte
		if null {
			n[0] = 1
		}
		binary.BigEndian.PutUint64(n[1:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field(false, []byte(id))
	field(false, binary.BigEndian.AppendUint64(nil, uint64(contactID)))
	field(evidence == nil, evidence)
	for _, t := range text {
		field(!t.Valid, []byte(t.String))
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// seal writes the MAC of the row id as it is now in tx (after Propose
// or a decision wrote it) and returns the row.
func seal(ctx context.Context, tx *sql.Tx, secret []byte, id string) (Pending, error) {
	if len(secret) < minSecret {
		return Pending{}, ErrNoSecret
	}
	p, err := GetPending(ctx, tx, id)
	if err != nil {
		return p, err
	}
	p.mac = rowMAC(secret, p.sum)
	if _, err := tx.ExecContext(ctx, `UPDATE pending_changes SET mac = ? WHERE id = ?`, p.mac, id); err != nil {
		return p, err
	}
	return p, nil
}

// Tampered lists the changes, of those waiting (or with all of every
// one), whose rows fail authentication under a.Secret (Authentic), or
// wait though a.Decisions has them decided (a row restored or edited):
// what ccdir verify and pending list report as tampering.
func Tampered(ctx context.Context, q Queryer, a Auth, all bool) ([]Pending, error) {
	if len(a.Secret) < minSecret {
		return nil, ErrNoSecret
	}
	ps, err := ListPending(ctx, q, all)
	if err != nil {
		return nil, err
	}
	rec := map[string]Decision{}
	if a.Decisions != nil {
		if rec, err = a.Decisions.Load(); err != nil {
			return nil, err
		}
	}
	var out []Pending
	for _, p := range ps {
		if !p.Authentic(a.Secret) || revived(p, rec) != nil {
			out = append(out, p)
		}
	}
	return out, nil
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

// MemberRequests counts the changes asked for the contact id by mail
// (actor member:…) since since. Each sends notices, some to an address
// outside the directory, so they count against the contact's changes a
// day (mailcmd's commands.changes_per_day) with its ledger entries. A
// VETO is not counted: each stops one change asked for, which was, and
// none may be refused for a budget someone else holding the key spent.
func MemberRequests(ctx context.Context, q Queryer, contactID int64, since time.Time) (int, error) {
	rows, err := q.QueryContext(ctx, `SELECT count(*) FROM pending_changes WHERE contact_id = ? AND actor LIKE 'member:%' AND requested >= ?`,
		contactID, formatTime(since))
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, err
		}
	}
	return n, rows.Err()
}

// Waiting reads, in tx, the change id for a decision, as Apply, Veto,
// Cancel and Prove do: it must be authentic under a (Auth: its MAC, and
// not decided per the home's record; else a *PendingError with
// ErrTampered), readable (ErrChangeNotValid), and
// wait (ErrChangeDecided; ErrChangeUnknown for an unknown id). What a
// caller makes of a change in the transaction that decides it (whom its
// notices go to) is made of this row, never of a copy read before.
func Waiting(ctx context.Context, tx *sql.Tx, a Auth, id string) (Pending, error) {
	return waiting(ctx, tx, a, id)
}

// waiting reads the change id for a decision: it must be authentic
// under secret (else a *PendingError with ErrTampered), readable, and
// wait.
func waiting(ctx context.Context, tx *sql.Tx, a Auth, id string) (Pending, error) {
	if len(a.Secret) < minSecret {
		return Pending{}, ErrNoSecret
	}
	p, err := GetPending(ctx, tx, id)
	if err != nil {
		return p, err
	}
	if !p.Authentic(a.Secret) {
		return p, &PendingError{Err: ErrTampered, ID: p.ID}
	}
	if err := a.check(p); err != nil {
		return p, err
	}
	if p.bad != nil {
		return p, &PendingError{Err: ErrChangeNotValid, ID: p.ID, Detail: fmt.Sprintf("change %s: %v", p.ID, p.bad)}
	}
	if p.State != StateWaiting {
		return p, &PendingError{Err: ErrChangeDecided, ID: p.ID, State: p.State, At: p.Decided}
	}
	return p, nil
}

// decide moves the waiting change p to state, at now, by by, and
// authenticates the row so decided under a.Secret. p must be authentic
// (waiting checked it): a decision never vouches for a row it did not
// find authentic. The decision is held for a.Decisions.Commit(tx),
// which the caller calls before tx commits.
func decide(ctx context.Context, tx *sql.Tx, a Auth, p *Pending, state, by, reason string, now time.Time) error {
	secret := a.Secret
	if !p.Authentic(secret) {
		return &PendingError{Err: ErrTampered, ID: p.ID}
	}
	now = now.UTC().Truncate(time.Second)
	if err := a.record(tx, p.ID, state, now); err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `UPDATE pending_changes SET state = ?, decided = ?, decided_by = ?, reason = ? WHERE id = ? AND state = ?`,
		state, formatTime(now), by, nullText(reason), p.ID, StateWaiting)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("liveness: change %s: decision not recorded (%d rows, %v)", p.ID, n, err)
	}
	p.State, p.Decided, p.DecidedBy, p.Reason = state, now, by, reason
	sealed, err := seal(ctx, tx, secret, p.ID)
	p.sum, p.mac = sealed.sum, sealed.mac
	return err
}

// Veto stops the waiting change id, at now; by is who vetoed (an actor
// text: "member:FPR"). Whether by may veto it (the contact's registered
// key, or an admin contact of one of its ccTLDs) is for the caller to
// decide, which knows the signer (mailcmd). A change that does not wait
// is a *PendingError (ErrChangeUnknown, ErrChangeDecided) and nothing
// changes. The caller announces the veto (Notices.AnnouncePending).
func Veto(ctx context.Context, tx *sql.Tx, a Auth, id, by string, now time.Time) (Pending, error) {
	p, err := waiting(ctx, tx, a, id)
	if err != nil {
		return p, err
	}
	return p, decide(ctx, tx, a, &p, StateVetoed, by, "", now)
}

// Cancel stops the waiting change id for the operator by (an actor text:
// "operator:NAME"), at now; as Veto otherwise.
func Cancel(ctx context.Context, tx *sql.Tx, a Auth, id, by string, now time.Time) (Pending, error) {
	p, err := waiting(ctx, tx, a, id)
	if err != nil {
		return p, err
	}
	return p, decide(ctx, tx, a, &p, StateCancelled, by, "", now)
}

// DiscardReason is the reason a discarded change is recorded with.
const DiscardReason = "its row failed authentication (possible database tampering); discarded by the operator unread"

// Discard stops the waiting change id whose row fails authentication
// under a (its MAC, or the home's record has it decided), for the operator by, at now (pending cancel --tampered):
// nothing of such a row is trusted, so nothing of it is applied or
// announced (its addresses and keys may be anyone's). The row is marked
// cancelled with DiscardReason and authenticated so decided, so that it
// no longer blocks a change of its kind nor reads as tampering. An
// authentic row is refused (ErrNotTampered: Cancel it), as one that
// does not wait (ErrChangeDecided); nothing changes then.
func Discard(ctx context.Context, tx *sql.Tx, a Auth, id, by string, now time.Time) (Pending, error) {
	secret := a.Secret
	if len(secret) < minSecret {
		return Pending{}, ErrNoSecret
	}
	p, err := GetPending(ctx, tx, id)
	if err != nil {
		return p, err
	}
	var pe *PendingError
	switch err := a.check(p); {
	case errors.As(err, &pe):
		// Revived: authentic, but decided per the record.
	case err != nil:
		return p, err
	case p.Authentic(secret):
		return p, &PendingError{Err: ErrNotTampered, ID: p.ID}
	}
	if p.State != StateWaiting {
		return p, &PendingError{Err: ErrChangeDecided, ID: p.ID, State: p.State, At: p.Decided}
	}
	now = now.UTC().Truncate(time.Second)
	if err := a.record(tx, p.ID, StateCancelled, now); err != nil {
		return p, err
	}
	res, err := tx.ExecContext(ctx, `UPDATE pending_changes SET state = ?, decided = ?, decided_by = ?, reason = ? WHERE id = ? AND state = ?`,
		StateCancelled, formatTime(now), by, DiscardReason, p.ID, StateWaiting)
	if err != nil {
		return p, err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return p, fmt.Errorf("liveness: change %s: discard not recorded (%d rows, %v)", p.ID, n, err)
	}
	return seal(ctx, tx, secret, p.ID)
}

// Prove records the proof of possession of the new key of the waiting
// change id: tokenHash is ProofHash of the token as it came back (in a
// CONFIRM). It must match the change's, before the change is due, once;
// anything else is a *PendingError (ErrChangeUnknown, ErrChangeDecided,
// ErrProofWrong, ErrProofDone, ErrProofMissing past due) and changes
// nothing. A proven change still waits for its due time: the delay is
// for a veto, the proof for the key.
func Prove(ctx context.Context, tx *sql.Tx, a Auth, id, tokenHash string, now time.Time) (Pending, error) {
	secret := a.Secret
	p, err := waiting(ctx, tx, a, id)
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
	sealed, err := seal(ctx, tx, secret, p.ID)
	p.sum, p.mac = sealed.sum, sealed.mac
	return p, err
}

// ApplyOptions are how Apply decides a change.
type ApplyOptions struct {
	// Auth authenticates the rows (the home's outbox key and record of
	// decisions): a row that fails authentication is never applied
	// (ErrTampered).
	Auth Auth
	// By is who decides: the operator's actor text.
	By string
	// Confirmed: the operator checked the new key with its owner
	// otherwise (approve --confirmed), so a missing proof of possession
	// does not stop it.
	Confirmed bool
	// Evidence re-verifies the signed mail a member asked with against
	// the key registered for the member now, at the time it was asked
	// (inbound.VerifyEvidence, what ccdir verify checks member entries
	// with): a member's change whose mail does not verify is not applied
	// (ErrTampered). A member's change without it is refused.
	Evidence directory.EvidenceFunc
	// Read, when set, is the change as the caller read it before t
	// began, of which it made the ledger entry's evidence
	// (ApplyEvidence, fixed when t began): a row that differs from it
	// now in any stored field (an edited copy read, a proof recorded
	// meanwhile) is refused (ErrChangeMoved), nothing decided, since
	// the evidence would not tell the story of the authenticated row.
	// Read it again and retry.
	Read *Pending
}

// Apply decides the waiting change id in t, at now, as o says, and
// returns it as it leaves it:
//
//   - a *PendingError with ErrTampered, nothing decided, when its row
//     fails authentication under o.Auth (Authentic, Decisions) or a member's
//     change's signed mail does not verify (o.Evidence); with
//     ErrChangeMoved when the row is not o.Read;
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
//     o.Confirmed (the operator checked the key otherwise: approve
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
func Apply(ctx context.Context, t *directory.Tx, id string, o ApplyOptions, now time.Time) (Pending, error) {
	tx, by, secret := t.SQL(), o.By, o.Auth
	p, err := waiting(ctx, tx, secret, id)
	if err != nil {
		return p, err
	}
	if o.Read != nil && (o.Read.ID != p.ID || o.Read.sum != p.sum) {
		return p, &PendingError{Err: ErrChangeMoved, ID: p.ID}
	}
	if p.NeedsProof() && !o.Confirmed {
		if now.Before(p.Due) {
			return p, &PendingError{Err: ErrProofMissing, ID: p.ID, At: p.Due}
		}
		return p, decide(ctx, tx, secret, &p, StateExpired, by, "the new key's possession was not proven by "+p.Due.UTC().Format(timeFormat), now)
	}
	c, err := t.Contact(p.Email)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return p, decide(ctx, tx, secret, &p, StateSuperseded, by, fmt.Sprintf("%s is no longer in the directory", p.Email), now)
	case err != nil:
		return p, err
	case c.ID != p.ContactID:
		return p, decide(ctx, tx, secret, &p, StateSuperseded, by, fmt.Sprintf("%s is another contact now", p.Email), now)
	case !strings.EqualFold(fingerprint(c.Key), p.Fingerprint):
		return p, decide(ctx, tx, secret, &p, StateSuperseded, by, fmt.Sprintf("the key of %s changed meanwhile (now %s)", p.Email, KeyText(c.Key)), now)
	}
	if exp, ok := p.NewKey.ExpiresAt(); ok && !now.Before(exp) {
		return p, decide(ctx, tx, secret, &p, StateSuperseded, by, "the new key expired at "+exp.UTC().Format(timeFormat), now)
	}
	if fpr, ok := strings.CutPrefix(p.Actor, "member:"); ok {
		// What a member may ask by mail it must still be entitled to when
		// the change takes effect: its key (the one the change found)
		// usable, one of its ccTLDs active (mailcmd's authorize).
		if why, err := memberGone(t, &c, now); err != nil || why != "" {
			if err != nil {
				return p, err
			}
			return p, decide(ctx, tx, secret, &p, StateSuperseded, by, why, now)
		}
		if err := checkAsked(p, &c, fpr, o.Evidence); err != nil {
			return p, err
		}
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
		return p, decide(ctx, tx, secret, &p, StateSuperseded, by, "refused by the directory now: "+err.Error(), now)
	}
	if err != nil {
		return p, err
	}
	return p, decide(ctx, tx, secret, &p, StateApplied, by, "", now)
}

// memberGone says why the contact c, who asked for a change by mail,
// may no longer have it made ("" when it may): the key it asked with,
// its registered key (a revoked copy has the same fingerprint), is
// revoked, expired or otherwise unusable at now (keys.Unusable), or none
// of its ccTLDs is active.
func memberGone(t *directory.Tx, c *directory.Contact, now time.Time) (string, error) {
	if c.Key == nil {
		return fmt.Sprintf("%s has no key now", c.Email), nil
	}
	pub, err := keys.ParsePublicOneAt([]byte(c.Key.Armored), now)
	if err == nil {
		err = pub.Check(now)
	}
	switch {
	case err != nil && (keys.Unusable(err) || errors.Is(err, keys.ErrNoKey)):
		return fmt.Sprintf("the key that asked for it, %s, cannot be used now (%s)", c.Key.Fingerprint, keys.Reason(err)), nil
	case err != nil:
		return fmt.Sprintf("the key that asked for it, %s, cannot be read now: %v", c.Key.Fingerprint, err), nil
	}
	for _, r := range c.Roles {
		m, err := t.Member(r.TLD)
		if errors.Is(err, directory.ErrNotFound) {
			continue
		}
		if err != nil {
			return "", err
		}
		if m.Status == directory.StatusActive {
			return "", nil
		}
	}
	return fmt.Sprintf("none of the ccTLDs of %s is active now", c.Email), nil
}

// checkAsked checks the signed mail that a member's change p was asked
// with: the member is the contact c itself (fpr, its registered key, the
// one the change found), and the mail kept as evidence verifies by
// c's key as registered now, at the time it was asked.
func checkAsked(p Pending, c *directory.Contact, fpr string, verify directory.EvidenceFunc) error {
	tampered := func(format string, args ...any) error {
		return &PendingError{Err: ErrTampered, ID: p.ID, Detail: fmt.Sprintf(format, args...)}
	}
	switch {
	case verify == nil:
		return fmt.Errorf("liveness: change %s: no check of the signed mail it was asked with", p.ID)
	case !strings.EqualFold(fpr, p.Fingerprint) || c.Key == nil:
		return tampered("asked by %s, not by the key of %s", p.Actor, p.Email)
	case len(p.Evidence) == 0:
		return tampered("asked by %s without the signed mail that asked", p.Actor)
	}
	if err := verify(p.Evidence, c.Key.Armored, p.Requested); err != nil {
		return tampered("the signed mail that asked does not verify by key %s: %v", c.Key.Fingerprint, err)
	}
	return nil
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
// impossible. A change whose row fails authentication under a
// (Authentic, or decided per a.Decisions) is left as it is: never
// decided.
func SupersedeWaiting(ctx context.Context, t *directory.Tx, a Auth, by string, now time.Time) ([]Superseded, error) {
	secret := a.Secret
	if len(secret) < minSecret {
		return nil, ErrNoSecret
	}
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
			if why == "" || !p.Authentic(secret) || p.bad != nil {
				continue
			}
			var pe *PendingError
			if err := a.check(p); errors.As(err, &pe) {
				continue // revived: never decided again
			} else if err != nil {
				return out, err
			}
			if err := decide(ctx, tx, a, &p, StateSuperseded, by, why+" before the change was due", now); err != nil {
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

// ParseApplyEvidence reads the evidence ApplyEvidence wrote: the id of
// the change it applied, who asked for it (p.Actor: "member:FPR" for a
// signed mail) and when, and the signed mail it quotes (nil when the
// change was not asked by mail). ok is false for evidence it did not
// write. It is a directory.AskedFunc: how verify and log --evidence -o
// find the member's mail behind an entry that applied a waiting change.
func ParseApplyEvidence(ev []byte) (id, actor string, asked time.Time, mail []byte, ok bool) {
	first, rest, quoted := bytes.Cut(ev, []byte("\n\n"))
	if !quoted {
		first, _, _ = bytes.Cut(ev, []byte("\n"))
	}
	var at string
	n, err := fmt.Sscanf(string(first), "pending change %s asked by %s at %s", &id, &actor, &at)
	if err != nil || n != 3 {
		return "", "", time.Time{}, nil, false
	}
	at = strings.TrimSuffix(at, ",")
	asked, err = time.Parse(time.RFC3339, at)
	if err != nil {
		return "", "", time.Time{}, nil, false
	}
	if quoted {
		mail = rest
	}
	return id, actor, asked, mail, true
}

var _ directory.AskedFunc = ParseApplyEvidence

package liveness

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ccdir/ccdir/directory"
)

// Defaults for Config.
const (
	DefaultInterval = 90 * 24 * time.Hour // ping.interval
	DefaultValid    = 14 * 24 * time.Hour // ping.valid
	DefaultRemind   = 7 * 24 * time.Hour  // ping.remind
)

// Outbox kinds of the messages of ping send.
const (
	KindPing     = "ping"        // a challenge and its reminder, to the contact
	KindStale    = "ping-notice" // the notice that a contact did not answer, to its admins and the operator
	KindKeyAlert = "key-expiry"  // a key-expiry reminder, to the key's owner
)

// Kinds are the outbox kinds ping send queues, for its delivery.
var Kinds = []string{KindPing, KindStale, KindKeyAlert}

// Verdicts of Status.
const (
	VerdictOK          = "ok"          // answered within ping.interval
	VerdictPending     = "pending"     // a challenge waits for its answer, or one is due
	VerdictStale       = "stale"       // a challenge expired unanswered since the last answer
	VerdictUnreachable = "unreachable" // nothing can be sent to it (no usable key), or bounces.limit bounces in a row
)

// Token lengths: a token is TokenLen characters of the URL-safe base64
// alphabet (letters, digits, '-' and '_'); a PONG argument outside
// MinTokenLen..MaxTokenLen is refused as malformed.
const (
	TokenLen    = 32
	MinTokenLen = 16
	MaxTokenLen = 64
)

// ValidToken reports whether s looks like a token (not whether it is
// one): MinTokenLen to MaxTokenLen letters, digits, '-' or '_'.
func ValidToken(s string) bool {
	if len(s) < MinTokenLen || len(s) > MaxTokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// tokenOf is the token of a challenge: HMAC-SHA256 under secret (kept
// outside the database: the home's outbox key) of the challenge's
// nonce, which the pings table keeps. So the reminder carries the same
// token as the challenge without the table holding it: a read of the
// database gives neither the token nor a way to make one.
func tokenOf(secret []byte, nonce string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("ccdir ping token v1\x00"))
	m.Write([]byte(nonce))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:TokenLen*3/4])
}

// hashToken is what the pings table keeps of a token: its SHA-256, hex.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Errors of Pong: why a token is refused. Each comes wrapped in a
// *PongError.
var (
	ErrTokenUnknown  = errors.New("no such token")
	ErrTokenNotYours = errors.New("the token was not sent to you")
	ErrTokenUsed     = errors.New("the token was used already")
	ErrTokenExpired  = errors.New("the token has expired")
)

// PongError is a refused PONG: Err is one of the ErrToken errors; At is
// when the token was used (ErrTokenUsed) or expired (ErrTokenExpired).
type PongError struct {
	Err error
	At  time.Time
}

func (e *PongError) Error() string {
	switch e.Err {
	case ErrTokenUsed:
		return fmt.Sprintf("%v, at %s", e.Err, e.At.Format(timeFormat))
	case ErrTokenExpired:
		return fmt.Sprintf("%v, at %s", e.Err, e.At.Format(timeFormat))
	}
	return e.Err.Error()
}

func (e *PongError) Unwrap() error { return e.Err }

const timeFormat = "2006-01-02 15:04 UTC"

// Answer is an accepted PONG.
type Answer struct {
	Sent     time.Time // when the challenge was sent
	Answered time.Time // now: the contact's new "last confirmed"
}

// Pong records, in tx, the answer to a challenge: token as written in a
// PONG signed by the key fpr of the contact email, at now. Only the
// challenge's own contact (the address and key it was sent to) answers
// it, once, before it expires; anything else is a *PongError and
// changes nothing. It writes only the pings table: no ledger entry.
func Pong(ctx context.Context, tx *sql.Tx, email, fpr, token string, now time.Time) (*Answer, error) {
	var (
		id            int64
		pEmail, pFpr  string
		sent, expires string
		answered      sql.NullString
	)
	err := tx.QueryRowContext(ctx, `SELECT id, email, fingerprint, sent, expires, answered FROM pings WHERE token_hash = ?`,
		hashToken(token)).Scan(&id, &pEmail, &pFpr, &sent, &expires, &answered)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &PongError{Err: ErrTokenUnknown}
	}
	if err != nil {
		return nil, err
	}
	if pEmail != email || !strings.EqualFold(pFpr, fpr) {
		return nil, &PongError{Err: ErrTokenNotYours}
	}
	if answered.Valid {
		return nil, &PongError{Err: ErrTokenUsed, At: parseTime(answered.String)}
	}
	exp := parseTime(expires)
	if !now.Before(exp) {
		return nil, &PongError{Err: ErrTokenExpired, At: exp}
	}
	res, err := tx.ExecContext(ctx, `UPDATE pings SET answered = ? WHERE id = ? AND answered IS NULL`, formatTime(now), id)
	if err != nil {
		return nil, err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return nil, fmt.Errorf("liveness: ping %d: answer not recorded (%d rows, %v)", id, n, err)
	}
	return &Answer{Sent: parseTime(sent), Answered: now}, nil
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339, s)
	return t
}

// Queryer is a database or transaction that pings are read from.
type Queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// ident is a contact as a challenge reaches it: its address and key. A
// new address or key is not confirmed by an answer to the old.
type ident struct{ email, fpr string }

func identOf(c *directory.Contact) (ident, bool) {
	if c.Key == nil {
		return ident{}, false
	}
	return ident{c.Email, strings.ToUpper(c.Key.Fingerprint)}, true
}

// ping is one row of the pings table.
type ping struct {
	id                            int64
	ident                         ident
	nonce, hash                   string
	sent, expires                 time.Time
	reminded, escalated, answered time.Time // zero: not yet
}

// state is what the pings table says of one contact.
type state struct {
	confirmed time.Time // the last answer; zero if none
	pings     []ping    // oldest first
}

// open returns the challenge that waits for an answer at now, if any.
func (s *state) open(now time.Time) *ping {
	for i := len(s.pings) - 1; i >= 0; i-- {
		p := &s.pings[i]
		if p.answered.IsZero() && now.Before(p.expires) {
			return p
		}
	}
	return nil
}

// silent returns the first challenge sent since the last answer that
// expired unanswered at now (the contact is stale since its expiry), or
// nil.
func (s *state) silent(now time.Time) *ping {
	for i := range s.pings {
		p := &s.pings[i]
		if p.answered.IsZero() && !now.Before(p.expires) && p.sent.After(s.confirmed) {
			return p
		}
	}
	return nil
}

// escalated reports whether a challenge sent since the last answer was
// escalated already: the admins hear of a silence once.
func (s *state) escalated() bool {
	for _, p := range s.pings {
		if !p.escalated.IsZero() && p.sent.After(s.confirmed) {
			return true
		}
	}
	return false
}

// loadStates reads the pings table, by contact (address and key).
func loadStates(ctx context.Context, q Queryer) (map[ident]*state, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, email, fingerprint, nonce, token_hash, sent, expires,
		coalesce(reminded, ''), coalesce(escalated, ''), coalesce(answered, '') FROM pings ORDER BY sent, id`)
	if err != nil {
		return nil, fmt.Errorf("liveness: read pings: %w", err)
	}
	defer rows.Close()
	out := map[ident]*state{}
	for rows.Next() {
		var p ping
		var sent, expires, reminded, escalated, answered string
		if err := rows.Scan(&p.id, &p.ident.email, &p.ident.fpr, &p.nonce, &p.hash, &sent, &expires, &reminded, &escalated, &answered); err != nil {
			return nil, fmt.Errorf("liveness: read pings: %w", err)
		}
		p.ident.fpr = strings.ToUpper(p.ident.fpr)
		p.sent, p.expires = parseTime(sent), parseTime(expires)
		p.reminded, p.escalated, p.answered = parseTime(reminded), parseTime(escalated), parseTime(answered)
		st := out[p.ident]
		if st == nil {
			st = &state{}
			out[p.ident] = st
		}
		if p.answered.After(st.confirmed) {
			st.confirmed = p.answered
		}
		st.pings = append(st.pings, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("liveness: read pings: %w", err)
	}
	return out, nil
}

// Confirmed returns when each of contacts last answered a challenge at
// its current address and key ("last confirmed"), by email; a contact
// that never did is not in the map. It is operational data, not signed
// state: what shows it (SHOW, CALL, contact show, digests) takes it from
// here, and says it in the words of [ConfirmedText].
func Confirmed(ctx context.Context, q Queryer, contacts []directory.Contact) (map[string]time.Time, error) {
	return ConfirmedAt(ctx, q, contacts, time.Time{})
}

// ConfirmedAt is [Confirmed] as it stood at t: answers given after t do
// not count; a zero t counts them all. A digest reads it at its own date,
// so that copies queued when an interrupted run is resumed say what the
// first ones said.
func ConfirmedAt(ctx context.Context, q Queryer, contacts []directory.Contact, t time.Time) (map[string]time.Time, error) {
	states, err := loadStates(ctx, q)
	if err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	for i := range contacts {
		id, ok := identOf(&contacts[i])
		if !ok {
			continue
		}
		st := states[id]
		if st == nil {
			continue
		}
		last := st.confirmed
		if !t.IsZero() {
			last = time.Time{}
			for _, p := range st.pings {
				if !p.answered.After(t) && p.answered.After(last) {
					last = p.answered
				}
			}
		}
		if !last.IsZero() {
			out[contacts[i].Email] = last
		}
	}
	return out, nil
}

// Fresh reports whether a last confirmed at t (zero: never) is within
// interval (ping.interval) of now: a contact CALL ranks as confirmed.
func Fresh(t time.Time, interval time.Duration, now time.Time) bool {
	return !t.IsZero() && now.Sub(t) < interval
}

// ConfirmedText says, for people, when a contact last answered a
// reachability check (t, its last accepted PONG; zero: never) and how long
// before now, marked stale when not [Fresh]. It is the one wording of
// "last confirmed": SHOW, CALL and the digests use it.
func ConfirmedText(t time.Time, interval time.Duration, now time.Time) string {
	if t.IsZero() {
		return "last confirmed: never (has not answered a reachability check)"
	}
	s := fmt.Sprintf("last confirmed: %s (%s ago)", t.UTC().Format(timeFormat), agoText(now.Sub(t)))
	if !Fresh(t, interval, now) {
		s += ", stale"
	}
	return s
}

// agoText is a duration in whole days, or hours under two days.
func agoText(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	n, one, many := int(d/(24*time.Hour)), "day", "days"
	if d < 48*time.Hour {
		n, one, many = int(d/time.Hour), "hour", "hours"
	}
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// Status is the reachability of one contact, as ping status shows it.
type Status struct {
	Email string   `json:"email"`
	Name  string   `json:"name"`
	TLDs  []string `json:"tlds"`
	// LastConfirmed is the last answer at the contact's current address
	// and key; zero if none.
	LastConfirmed time.Time `json:"last_confirmed"`
	// PendingSince is when the challenge waiting for an answer was
	// sent; zero if none waits.
	PendingSince time.Time `json:"pending_since"`
	// StaleSince is when the contact became stale: the expiry of the
	// first challenge it left unanswered since its last answer.
	StaleSince time.Time `json:"stale_since"`
	// Bounces is its run of bounces (BounceRuns); unreachable when it
	// reaches Config.BounceLimit.
	Bounces Bounces `json:"bounces"`
	Verdict string  `json:"verdict"`
	// Detail says why, in a few words.
	Detail string `json:"detail"`
}

// Attention reports whether the status needs the operator (stale or
// unreachable): ping status then exits 4.
func (s Status) Attention() bool {
	return s.Verdict == VerdictStale || s.Verdict == VerdictUnreachable
}

// Statuses returns the reachability of every contact of snap that
// ping send challenges (directory.Snapshot.Reachable), sorted by email.
// usable says why a contact's key cannot be sent to now (nil if it can).
func Statuses(ctx context.Context, q Queryer, snap *directory.Snapshot, cfg Config, now time.Time, usable func(*directory.Contact) error) ([]Status, error) {
	cfg = cfg.defaults()
	states, err := loadStates(ctx, q)
	if err != nil {
		return nil, err
	}
	bounces, err := BounceRuns(ctx, q, snap)
	if err != nil {
		return nil, err
	}
	out := []Status{}
	for i := range snap.Contacts {
		c := &snap.Contacts[i]
		if !snap.Reachable(c) {
			continue
		}
		s := Status{Email: c.Email, Name: c.Name, TLDs: snap.ActiveTLDs(c), Bounces: bounces[c.Email]}
		id, ok := identOf(c)
		st := states[id]
		if st == nil {
			st = &state{}
		}
		s.LastConfirmed = st.confirmed
		if p := st.open(now); p != nil {
			s.PendingSince = p.sent
		}
		if p := st.silent(now); p != nil {
			s.StaleSince = p.expires
		}
		var kerr error
		if !ok {
			kerr = errors.New("no key")
		} else if usable != nil {
			kerr = usable(c)
		}
		switch {
		case kerr != nil:
			s.Verdict, s.Detail = VerdictUnreachable, "no usable key: "+kerr.Error()
		case s.Bounces.Unreachable(cfg.BounceLimit):
			s.Verdict, s.Detail = VerdictUnreachable, s.Bounces.String()
		case !st.confirmed.IsZero() && now.Sub(st.confirmed) < cfg.Interval:
			s.Verdict, s.Detail = VerdictOK, "answered "+st.confirmed.Format(time.DateOnly)
		case !s.StaleSince.IsZero():
			s.Verdict, s.Detail = VerdictStale, "no answer since "+s.StaleSince.Format(time.DateOnly)
		case !s.PendingSince.IsZero():
			s.Verdict, s.Detail = VerdictPending, "challenge sent "+s.PendingSince.Format(time.DateOnly)
		default:
			s.Verdict, s.Detail = VerdictPending, "challenge due at the next ping send"
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Email, b.Email) })
	return out, nil
}

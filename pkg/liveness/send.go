package liveness

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/fanout"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// Config is what the operator sets for pings. Zero values mean the
// documented defaults.
type Config struct {
	// Interval: a contact whose last answer is older is challenged
	// again (default DefaultInterval, ping.interval).
	Interval time.Duration
	// Valid is how long a challenge's token may be answered (default
	// DefaultValid, ping.valid).
	Valid time.Duration
	// Remind: a challenge unanswered after this long gets one reminder
	// with the same token (default DefaultRemind, ping.remind).
	Remind time.Duration
	// NoEscalate turns off the notice to a contact's admins (and the
	// operator) when a challenge expires unanswered (ping.escalate:
	// false).
	NoEscalate bool
	// BounceLimit is how many bounces in a row (Bounces) make a contact
	// unreachable (default DefaultBounceLimit, bounces.limit).
	BounceLimit int
	// RemindDays are the days before a key's expiry its owner is
	// reminded at, once each (default DefaultRemindDays,
	// keys.remind_days).
	RemindDays []int
	// Subject is the neutral outer Subject (digest.subject); empty means
	// "Encrypted message".
	Subject string
}

func (c Config) defaults() Config {
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.Valid <= 0 {
		c.Valid = DefaultValid
	}
	if c.Remind <= 0 {
		c.Remind = DefaultRemind
	}
	if c.Subject == "" {
		c.Subject = "Encrypted message"
	}
	return c
}

// Sender is one run of `ccdir ping send`. Its fields are set by the
// caller; a nil Now means time.Now, a nil Rand crypto/rand.
type Sender struct {
	Store  *directory.Store
	Secret *keys.Secret
	Outbox *outbox.Outbox
	// TokenSecret is what tokens are derived from (tokenOf): a secret
	// kept outside the database, the home's outbox key.
	TokenSecret []byte
	Config      Config
	// Operator, if set, is told of every silence too: the operator's own
	// address and key (operator.address, operator.key), as a recipient
	// of a personal message; it is not a contact.
	Operator *directory.Contact
	Now      func() time.Time
	Rand     io.Reader
}

// Skipped is a contact that gets no challenge, and why.
type Skipped struct {
	Email  string `json:"email"`
	Reason string `json:"reason"`
}

// Escalation is the notice that a contact left a challenge unanswered.
type Escalation struct {
	Email string `json:"email"`
	// Notified are the addresses the notice was queued to.
	Notified []string `json:"notified"`
	// Notes say who could not be told, and why.
	Notes []string `json:"notes,omitempty"`
}

// Result says what a run queued.
type Result struct {
	Challenged []string     `json:"challenged"`
	Reminded   []string     `json:"reminded"`
	Escalated  []Escalation `json:"escalated"`
	Skipped    []Skipped    `json:"skipped"`
	// KeyReminders are the key-expiry reminders queued.
	KeyReminders []KeyReminder `json:"key_reminders"`
	// Expired are the keys that expired: they get no reminder (nothing
	// can be encrypted to them), the operator is told.
	Expired []KeyReminder `json:"expired_keys"`
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Second)
	}
	return time.Now().UTC().Truncate(time.Second)
}

func (s *Sender) rand() io.Reader {
	if s.Rand != nil {
		return s.Rand
	}
	return rand.Reader
}

// Send queues, for every contact that receives directory data
// (directory.Snapshot.Reachable, read through Store.Checked as every
// sender of directory data does):
//
//   - a challenge, to a contact that has no challenge waiting and has
//     never answered one at its current address and key (a contact added
//     today included), or whose last answer is older than
//     Config.Interval;
//   - one reminder with the same token, to a contact whose challenge has
//     waited Config.Remind;
//   - when a challenge expires unanswered, a notice to the admin
//     contacts of the contact's ccTLDs and to the Operator (once per
//     silence: not again until the contact has answered), unless
//     Config.NoEscalate.
//
// Each message is queued in one transaction with what records it, so a
// run that stops anywhere is finished by the next, nothing lost and
// nothing sent twice; a rerun the same day sends nothing new. It
// delivers nothing: the caller delivers the outbox kinds in Kinds.
func (s *Sender) Send(ctx context.Context) (*Result, error) {
	if len(s.TokenSecret) < 16 {
		return nil, errors.New("liveness: no token secret")
	}
	cfg := s.Config.defaults()
	now := s.now()
	v, err := s.Secret.Public().NewVerifier(now)
	if err != nil {
		return nil, fmt.Errorf("liveness: directory key: %w", err)
	}
	snap, err := s.Store.Checked(ctx, s.Secret.Fingerprint(), v.Verify)
	if err != nil {
		return nil, err
	}
	states, err := loadStates(ctx, s.Store.DB())
	if err != nil {
		return nil, err
	}
	r := &run{s: s, cfg: cfg, now: now, snap: snap, keys: fanout.NewKeys(),
		res: &Result{Challenged: []string{}, Reminded: []string{}, Escalated: []Escalation{}, Skipped: []Skipped{},
			KeyReminders: []KeyReminder{}, Expired: []KeyReminder{}}}
	r.keys.LoadContacts(snap.Contacts, now)
	for i := range snap.Contacts {
		c := &snap.Contacts[i]
		if !snap.Reachable(c) {
			continue
		}
		id, ok := identOf(c)
		if !ok {
			r.res.Skipped = append(r.res.Skipped, Skipped{c.Email, "no key"})
			continue
		}
		if err := r.keyExpiry(ctx, c); err != nil {
			return r.res, err
		}
		st := states[id]
		if st == nil {
			st = &state{}
		}
		if err := r.contact(ctx, c, st); err != nil {
			return r.res, err
		}
	}
	return r.res, nil
}

// run is one Send.
type run struct {
	s    *Sender
	cfg  Config
	now  time.Time
	snap *directory.Snapshot
	keys *fanout.Keys
	res  *Result
}

// contact does what is due for one contact.
func (r *run) contact(ctx context.Context, c *directory.Contact, st *state) error {
	if !r.cfg.NoEscalate && !st.escalated() {
		if p := st.silent(r.now); p != nil {
			if err := r.escalate(ctx, c, st, p); err != nil {
				return err
			}
		}
	}
	if p := st.open(r.now); p != nil {
		if p.reminded.IsZero() && !r.now.Before(p.sent.Add(r.cfg.Remind)) {
			return r.remind(ctx, c, p)
		}
		return nil
	}
	if !st.confirmed.IsZero() && r.now.Sub(st.confirmed) < r.cfg.Interval {
		return nil
	}
	return r.challenge(ctx, c)
}

// challenge sends c a new challenge.
func (r *run) challenge(ctx context.Context, c *directory.Contact) error {
	var b [16]byte
	if _, err := io.ReadFull(r.s.rand(), b[:]); err != nil {
		return err
	}
	p := ping{ident: ident{c.Email, strings.ToUpper(c.Key.Fingerprint)}, nonce: hex.EncodeToString(b[:]),
		sent: r.now, expires: r.now.Add(r.cfg.Valid)}
	token := tokenOf(r.s.TokenSecret, p.nonce)
	p.hash = hashToken(token)
	m, err := r.message(c, KindPing, "ping-"+p.nonce, "ping-"+p.nonce, challengeSubject(r.snap.Info), challengeBody(r.snap, c, &p, token, false))
	if r.skip(c, err) {
		return nil
	}
	if err != nil {
		return err
	}
	return r.tx(ctx, func(tx *sql.Tx) error {
		// Another run may have challenged c meanwhile (ping send holds a
		// lock, but the table is the truth).
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pings WHERE email = ? AND fingerprint = ? AND answered IS NULL AND expires > ?`,
			p.ident.email, p.ident.fpr, formatTime(r.now)).Scan(&n); err != nil || n > 0 {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO pings (email, fingerprint, nonce, token_hash, sent, expires) VALUES (?, ?, ?, ?, ?, ?)`,
			p.ident.email, p.ident.fpr, p.nonce, p.hash, formatTime(p.sent), formatTime(p.expires)); err != nil {
			return err
		}
		if _, err := r.s.Outbox.EnqueueTx(ctx, tx, m); err != nil {
			return err
		}
		r.res.Challenged = append(r.res.Challenged, c.Email)
		return nil
	})
}

// remind sends c the reminder of its challenge p, with the same token.
func (r *run) remind(ctx context.Context, c *directory.Contact, p *ping) error {
	token := tokenOf(r.s.TokenSecret, p.nonce)
	if hashToken(token) != p.hash {
		// The secret changed since the challenge (a new outbox key): the
		// token cannot be told again. The next challenge, after expiry,
		// carries a new one.
		r.res.Skipped = append(r.res.Skipped, Skipped{c.Email, "no reminder: the token of the challenge of " + p.sent.Format(time.DateOnly) + " cannot be made again (the home's outbox key changed)"})
		return nil
	}
	m, err := r.message(c, KindPing, "remind-"+p.nonce, "ping-"+p.nonce+"-remind", "Reminder: "+challengeSubject(r.snap.Info), challengeBody(r.snap, c, p, token, true))
	if r.skip(c, err) {
		return nil
	}
	if err != nil {
		return err
	}
	return r.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE pings SET reminded = ? WHERE id = ? AND reminded IS NULL`, formatTime(r.now), p.id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		if _, err := r.s.Outbox.EnqueueTx(ctx, tx, m); err != nil {
			return err
		}
		r.res.Reminded = append(r.res.Reminded, c.Email)
		return nil
	})
}

// escalate tells the admin contacts of c's ccTLDs that c left the
// challenge p unanswered.
func (r *run) escalate(ctx context.Context, c *directory.Contact, st *state, p *ping) error {
	e := Escalation{Email: c.Email, Notified: []string{}}
	var msgs []outbox.Message
	tlds := r.snap.ActiveTLDs(c)
	seen := map[string]bool{c.Email: true}
	for _, tld := range tlds {
		for _, a := range r.snap.ContactsOf(tld) {
			if seen[a.Email] || a.RoleFor(tld) != directory.RoleAdmin || !r.snap.Reachable(&a) {
				continue
			}
			seen[a.Email] = true
			m, err := r.message(&a, KindStale, "stale-"+p.nonce, "ping-"+p.nonce+"-stale-"+shortHash(a.Email),
				staleSubject(r.snap.Info, c, tlds), staleBody(r.snap, c, tlds, st, p, &a))
			if isKeyError(err) {
				e.Notes = append(e.Notes, fmt.Sprintf("admin %s not told: %v", a.Email, err))
				continue
			}
			if err != nil {
				return err
			}
			msgs = append(msgs, m)
			e.Notified = append(e.Notified, a.Email)
		}
	}
	if len(msgs) == 0 {
		e.Notes = append(e.Notes, "no admin contact of "+strings.Join(displayAll(tlds), ", ")+" to tell")
	}
	switch op := r.s.Operator; {
	case op == nil:
		e.Notes = append(e.Notes, "no operator address configured")
	default:
		m, err := r.message(op, KindStale, "stale-"+p.nonce, "ping-"+p.nonce+"-stale-"+shortHash(op.Email),
			staleSubject(r.snap.Info, c, tlds), staleBody(r.snap, c, tlds, st, p, nil))
		if isKeyError(err) {
			e.Notes = append(e.Notes, fmt.Sprintf("the operator (%s) not told: %v", op.Email, err))
			break
		}
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
		e.Notified = append(e.Notified, op.Email)
	}
	return r.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE pings SET escalated = ? WHERE id = ? AND escalated IS NULL`, formatTime(r.now), p.id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		if len(msgs) > 0 {
			if _, err := r.s.Outbox.EnqueueTx(ctx, tx, msgs...); err != nil {
				return err
			}
		}
		r.res.Escalated = append(r.res.Escalated, e)
		return nil
	})
}

// skip records c as skipped when err says its key cannot be sent to.
func (r *run) skip(c *directory.Contact, err error) bool {
	if !isKeyError(err) {
		return false
	}
	r.res.Skipped = append(r.res.Skipped, Skipped{c.Email, "unusable key: " + err.Error()})
	return true
}

func isKeyError(err error) bool {
	return err != nil && (keys.Unusable(err) || errors.Is(err, keys.ErrNoKey))
}

// tx runs fn in one transaction of the operational tables.
func (r *run) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := r.s.Store.DB().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// message builds one personal message of the directory to c (signed,
// encrypted to c's registered key: fanout.Personal).
func (r *run) message(c *directory.Contact, kind, ref, msgID, subject, body string) (outbox.Message, error) {
	pub, err := r.keys.Public(c.Key, r.now)
	if err != nil {
		return outbox.Message{}, fmt.Errorf("key of %s: %w", c.Email, err)
	}
	info := r.snap.Info
	p := &fanout.Personal{Kind: kind, Ref: ref, Envelope: info.Address,
		From:    mail.Address{Name: info.Name, Address: info.Address},
		To:      mail.Address{Name: c.Name, Address: c.Email},
		Subject: subject, OuterSubject: r.cfg.Subject, Date: r.now,
		MessageID: msgID + "@" + info.Address[strings.LastIndexByte(info.Address, '@')+1:],
		Parts:     []pgpmime.Part{{ContentType: "text/plain", Body: []byte(body)}},
		Extra:     []pgpmime.Field{{Key: "Auto-Submitted", Value: "auto-generated"}}}
	return p.Message(r.s.Secret, pub)
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:6])
}

package report

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/fanout"
	"github.com/ccdir/ccdir/pkg/liveness"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/receive"
)

// Kind is the outbox kind of the report mailed to the operator; its ref
// is the report's period (Period).
const Kind = "report"

// DefaultSince is how far back the first report looks, when no report
// was mailed before.
const DefaultSince = 7 * 24 * time.Hour

// Period is the period of a report made at now: its UTC day.
func Period(now time.Time) string { return now.UTC().Format(time.DateOnly) }

// Delivery is a message that failed or bounced.
type Delivery struct {
	ID     int64  `json:"id"`
	Kind   string `json:"kind"`
	To     string `json:"to"`
	Status string `json:"status"`
	Error  string `json:"error"`
}

// Contact is a stale or unreachable contact.
type Contact struct {
	Email   string   `json:"email"`
	TLDs    []string `json:"tlds"`
	Verdict string   `json:"verdict"`
	Detail  string   `json:"detail"`
}

// Key is a contact's key that expires soon (or has expired).
type Key struct {
	Email       string    `json:"email"`
	Fingerprint string    `json:"fingerprint"`
	Expires     time.Time `json:"expires"`
}

// Change is a guarded key or email change (liveness.Pending): one that
// waits, or one decided during the report's period. Its fields are
// named as in ccdir pending list --json.
type Change struct {
	ID      string    `json:"id"`
	Contact string    `json:"contact"` // the contact's address when it was asked for
	Kind    string    `json:"kind"`    // liveness.ChangeKey or liveness.ChangeEmail
	Old     string    `json:"old"`     // the address, or the key's fingerprint ("none")
	New     string    `json:"new"`     // the new address, or the new key's fingerprint
	AskedBy string    `json:"asked_by"`
	Asked   time.Time `json:"asked"`
	Due     time.Time `json:"due"`
	// ProofNeeded: the new key's possession must be proven (a key change
	// asked for by mail); Proven is when it was, nil until then.
	ProofNeeded bool       `json:"proof_needed"`
	Proven      *time.Time `json:"proven"`
	State       string     `json:"state"`
	Decided     *time.Time `json:"decided"` // nil while it waits
	DecidedBy   string     `json:"decided_by,omitempty"`
	Reason      string     `json:"reason,omitempty"` // why it expired or was superseded
	// Tampered: its row fails authentication (liveness.Tampered: edited
	// in the database, or put back after it was decided): it is never
	// applied, only discarded (ccdir pending cancel ID --tampered).
	Tampered bool `json:"tampered,omitempty"`
}

func toChange(p liveness.Pending) Change {
	c := Change{ID: p.ID, Contact: p.Email, Kind: p.Kind, Old: p.Old(), New: p.NewEmail, AskedBy: p.Actor,
		Asked: p.Requested.UTC(), Due: p.Due.UTC(), ProofNeeded: p.ProofHash != "", State: p.State,
		DecidedBy: p.DecidedBy, Reason: p.Reason}
	if p.Kind == liveness.ChangeKey {
		c.New = p.NewFingerprint
	}
	if !p.Proven.IsZero() {
		t := p.Proven.UTC()
		c.Proven = &t
	}
	if !p.Decided.IsZero() {
		t := p.Decided.UTC()
		c.Decided = &t
	}
	return c
}

// Refusals is how many mails were refused for one reason.
type Refusals struct {
	Reason string `json:"reason"`
	Text   string `json:"text"`
	Count  int    `json:"count"`
}

// Summary is one report.
type Summary struct {
	Period     string     `json:"period"`
	Since      time.Time  `json:"since"`
	Until      time.Time  `json:"until"`
	Deliveries []Delivery `json:"deliveries"`
	Contacts   []Contact  `json:"contacts"`
	Keys       []Key      `json:"keys"`
	KeysWithin int        `json:"keys_within_days"` // Keys: those expiring within this many days
	Refusals   []Refusals `json:"refusals"`
	Deferred   int        `json:"deferred"` // mails deferred by a failure of ours (they come again)
	// Pending are the guarded changes that wait now, whenever asked
	// for; Decided those decided (applied, vetoed, cancelled, expired,
	// superseded) during the period.
	Pending []Change `json:"pending"`
	Decided []Change `json:"decided"`
	// DirectoryKey is the directory's own key when it expires within
	// KeysWithin days (or has expired); nil otherwise.
	DirectoryKey *Key `json:"directory_key,omitempty"`
}

// Empty reports whether there is nothing to say.
func (s *Summary) Empty() bool {
	return len(s.Deliveries)+len(s.Contacts)+len(s.Keys)+len(s.Refusals)+len(s.Pending)+len(s.Decided) == 0 && s.Deferred == 0 &&
		s.DirectoryKey == nil
}

// Sources is what a report is made of. Statuses are liveness.Statuses
// of the directory now; Snapshot gives the contacts' keys.
type Sources struct {
	DB       *sql.DB
	Outbox   *outbox.Outbox
	Snapshot *directory.Snapshot
	Statuses []liveness.Status
	Since    time.Time // zero: from the last report (Last), else DefaultSince ago
	// RemindDays is keys.remind_days: the keys reported are those that
	// expire within the largest of them (the first reminder an owner
	// gets), or have expired; nil: liveness.DefaultRemindDays.
	RemindDays []int
	Now        time.Time
	// Auth authenticates the pending changes (liveness.Tampered): those
	// whose rows fail it are marked Tampered. A zero Auth: not checked.
	Auth liveness.Auth
}

// Last returns when the last report mailed ended (zero if none).
func Last(ctx context.Context, db *sql.DB) (time.Time, error) {
	var until sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT max(until) FROM reports`).Scan(&until); err != nil {
		return time.Time{}, fmt.Errorf("report: last: %w", err)
	}
	if !until.Valid {
		return time.Time{}, nil
	}
	return time.UnixMilli(until.Int64).UTC(), nil
}

// Sent reports whether the report of period was mailed already.
func Sent(ctx context.Context, db *sql.DB, period string) (bool, error) {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM reports WHERE period = ?`, period).Scan(&n); err != nil {
		return false, fmt.Errorf("report: %w", err)
	}
	return n > 0, nil
}

// Collect makes the summary from src.
func Collect(ctx context.Context, src Sources) (*Summary, error) {
	now := src.Now.UTC()
	since := src.Since
	if since.IsZero() {
		last, err := Last(ctx, src.DB)
		if err != nil {
			return nil, err
		}
		since = last
		if since.IsZero() {
			since = now.Add(-DefaultSince)
		}
	}
	days := src.RemindDays
	if len(days) == 0 {
		days = liveness.DefaultRemindDays
	}
	within := slices.Max(days)
	expiring := time.Duration(within) * 24 * time.Hour
	s := &Summary{Period: Period(now), Since: since.UTC(), Until: now, KeysWithin: within,
		Deliveries: []Delivery{}, Contacts: []Contact{}, Keys: []Key{}, Refusals: []Refusals{}, Pending: []Change{}, Decided: []Change{}}

	rows, err := src.Outbox.List(ctx, outbox.Filter{Status: []outbox.Status{outbox.Failed, outbox.Bounced}})
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		if endedAt(r).Before(since) {
			continue
		}
		s.Deliveries = append(s.Deliveries, Delivery{ID: r.ID, Kind: r.Kind, To: r.To, Status: string(r.Status), Error: r.LastError})
	}
	for _, st := range src.Statuses {
		if st.Attention() {
			s.Contacts = append(s.Contacts, Contact{Email: st.Email, TLDs: st.TLDs, Verdict: st.Verdict, Detail: st.Detail})
		}
	}
	if src.Snapshot != nil {
		ks := fanout.NewKeys() // when each key stops working: its subkeys' expiry counts
		for _, c := range src.Snapshot.Contacts {
			if exp, ok := ks.UsableUntil(c.Key, now); ok && !exp.IsZero() && exp.Before(now.Add(expiring)) {
				s.Keys = append(s.Keys, Key{Email: c.Email, Fingerprint: c.Key.Fingerprint, Expires: exp.UTC()})
			}
		}
		sort.Slice(s.Keys, func(i, j int) bool { return s.Keys[i].Expires.Before(s.Keys[j].Expires) })
		// The directory's own key (the ledger's copy), which the
		// operator renews: the same horizon as the contacts' keys.
		if pub, err := keys.ParsePublicOne([]byte(src.Snapshot.Info.PublicKey)); err == nil {
			if exp := pub.Expires; !exp.IsZero() && exp.Before(now.Add(expiring)) {
				s.DirectoryKey = &Key{Email: src.Snapshot.Info.Address, Fingerprint: pub.Fingerprint, Expires: exp.UTC()}
			}
		}
	}
	// Every change, the oldest asked for first: those that wait, and
	// those decided during the period, by when they were.
	changes, err := liveness.ListPending(ctx, src.DB, true)
	if err != nil {
		return nil, fmt.Errorf("report: pending changes: %w", err)
	}
	tampered := map[string]bool{}
	if src.Auth.Secret != nil {
		bad, err := liveness.Tampered(ctx, src.DB, src.Auth, false)
		if err != nil {
			return nil, fmt.Errorf("report: pending changes: %w", err)
		}
		for _, p := range bad {
			tampered[p.ID] = true
		}
	}
	for _, p := range changes {
		switch {
		case p.State == liveness.StateWaiting:
			c := toChange(p)
			c.Tampered = tampered[p.ID]
			s.Pending = append(s.Pending, c)
		case !p.Decided.Before(since) && !p.Decided.After(now):
			s.Decided = append(s.Decided, toChange(p))
		}
	}
	sort.SliceStable(s.Decided, func(i, j int) bool { return s.Decided[i].Decided.Before(*s.Decided[j].Decided) })
	log, err := receive.InboundLog(ctx, src.DB, since)
	if err != nil {
		return nil, fmt.Errorf("report: inbound log: %w", err)
	}
	// Refusals are counted by reason code (the refusal's inbound.Kind),
	// each with its last text; those of no kind (ReasonOther) by text,
	// which is all that says why.
	by := map[[2]string]*Refusals{}
	var order [][2]string
	for _, e := range log {
		switch e.Verdict {
		case receive.VerdictRefused:
			k := [2]string{e.Reason, ""}
			if e.Reason == receive.ReasonOther {
				k[1] = e.Text
			}
			r := by[k]
			if r == nil {
				r = &Refusals{Reason: e.Reason}
				by[k] = r
				order = append(order, k)
			}
			r.Text = e.Text // oldest first: the last one stays
			r.Count++
		case receive.VerdictDeferred:
			s.Deferred++
		}
	}
	for _, k := range order {
		s.Refusals = append(s.Refusals, *by[k])
	}
	sort.Slice(s.Refusals, func(i, j int) bool {
		a, b := s.Refusals[i], s.Refusals[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Reason+a.Text < b.Reason+b.Text
	})
	return s, nil
}

// endedAt is when r bounced or failed: a delivery status notification
// comes, and a deferred message gives up, long after it was queued or
// last sent. A message that failed before outbox migration 4 kept no
// time of its failure: its last attempt stands for it.
func endedAt(r outbox.Row) time.Time {
	switch {
	case r.Status == outbox.Bounced && !r.BouncedAt.IsZero():
		return r.BouncedAt
	case r.Status == outbox.Failed && !r.FailedAt.IsZero():
		return r.FailedAt
	}
	return latest(r.Created, r.SentAt, r.NextAttempt)
}

func latest(ts ...time.Time) time.Time {
	var t time.Time
	for _, x := range ts {
		if x.After(t) {
			t = x
		}
	}
	return t
}

// Text is the summary as the operator reads it.
func (s *Summary) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Report %s: since %s\n", s.Period, s.Since.Format(time.RFC3339))
	if s.Empty() {
		b.WriteString("\nNothing needs attention.\n")
		return b.String()
	}
	if len(s.Deliveries) > 0 {
		fmt.Fprintf(&b, "\nFailed and bounced deliveries (%d):\n", len(s.Deliveries))
		for _, d := range s.Deliveries {
			fmt.Fprintf(&b, "  %s  message %d (%s) to %s: %s\n", d.Status, d.ID, d.Kind, d.To, d.Error)
		}
		b.WriteString("  (ccdir outbox list --status failed,bounced)\n")
	}
	if len(s.Contacts) > 0 {
		fmt.Fprintf(&b, "\nStale and unreachable contacts (%d):\n", len(s.Contacts))
		for _, c := range s.Contacts {
			fmt.Fprintf(&b, "  %s  %s (%s): %s\n", c.Verdict, c.Email, strings.Join(c.TLDs, ","), c.Detail)
		}
	}
	if len(s.Keys) > 0 {
		fmt.Fprintf(&b, "\nKeys expiring within %d days (%d):\n", s.KeysWithin, len(s.Keys))
		for _, k := range s.Keys {
			fmt.Fprintf(&b, "  %s  %s (key %s)\n", k.Expires.Format(time.DateOnly), k.Email, k.Fingerprint)
		}
	}
	if k := s.DirectoryKey; k != nil {
		if k.Expires.After(s.Until) {
			fmt.Fprintf(&b, "\nThe directory key %s expires on %s (in %d days).\n", k.Fingerprint, k.Expires.Format(time.DateOnly), int(k.Expires.Sub(s.Until).Hours()/24))
		} else {
			fmt.Fprintf(&b, "\nThe directory key %s expired on %s: it signs nothing (no digest, no reply).\n", k.Fingerprint, k.Expires.Format(time.DateOnly))
		}
		b.WriteString("  Renew it (the same key, a new expiry): ccdir key update-uids --renew;\n  then members import it again (it travels with the next digest), and publish it: ccdir pubkey --wkd, --dane\n")
	}
	const at = "2006-01-02 15:04 UTC"
	if len(s.Pending) > 0 {
		fmt.Fprintf(&b, "\nPending key and email changes that wait (%d):\n", len(s.Pending))
		for _, c := range s.Pending {
			fmt.Fprintf(&b, "  %s  %s %s: %s → %s, asked by %s at %s, due %s%s\n", c.ID, c.Contact, c.Kind, c.Old, c.New,
				c.AskedBy, c.Asked.Format(at), c.Due.Format(at), c.proof(at))
			if c.Tampered {
				fmt.Fprintf(&b, "    TAMPERED: its row fails authentication; never applied; check who can write the database, then: ccdir pending cancel %s --tampered\n", c.ID)
			}
		}
		b.WriteString("  (ccdir pending list; ccdir pending approve ID or ccdir pending cancel ID)\n")
	}
	if len(s.Decided) > 0 {
		fmt.Fprintf(&b, "\nChanges decided (%d):\n", len(s.Decided))
		for _, c := range s.Decided {
			fmt.Fprintf(&b, "  %s  %s %s: %s → %s, asked by %s, %s at %s by %s", c.ID, c.Contact, c.Kind, c.Old, c.New,
				c.AskedBy, c.State, c.Decided.Format(at), c.DecidedBy)
			if c.Reason != "" {
				fmt.Fprintf(&b, ": %s", c.Reason)
			}
			b.WriteString("\n")
		}
	}
	if len(s.Refusals) > 0 {
		n := 0
		for _, r := range s.Refusals {
			n += r.Count
		}
		fmt.Fprintf(&b, "\nRefused mail by reason (%d):\n", n)
		for _, r := range s.Refusals {
			fmt.Fprintf(&b, "  %5d  %s: %s\n", r.Count, r.Reason, r.Text)
		}
	}
	if s.Deferred > 0 {
		fmt.Fprintf(&b, "\nDeferred by a failure of ours (the MTA retries): %d mails\n", s.Deferred)
	}
	return b.String()
}

// proof says, after a key change that needs it, whether the new key's
// possession is proven.
func (c Change) proof(at string) string {
	switch {
	case !c.ProofNeeded:
		return ""
	case c.Proven == nil:
		return "; possession of the new key not proven yet"
	}
	return "; possession of the new key proven at " + c.Proven.Format(at)
}

// ErrSent: the report of this period was mailed already.
var ErrSent = errors.New("the report of this period was mailed already")

// Queue queues m, the report s mailed to the operator (kind Kind, ref
// s.Period), and records it, in one transaction: a report is recorded
// if and only if it is queued, and a period gets one report at most
// (ErrSent).
func Queue(ctx context.Context, db *sql.DB, ob *outbox.Outbox, s *Summary, m outbox.Message) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO reports (period, since, until) VALUES (?, ?, ?) ON CONFLICT (period) DO NOTHING`,
		s.Period, s.Since.UnixMilli(), s.Until.UnixMilli())
	if err != nil {
		return fmt.Errorf("report: record: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrSent
	}
	if _, err := ob.EnqueueTx(ctx, tx, m); err != nil {
		return err
	}
	return tx.Commit()
}

package relay

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ccdir/ccdir/pkg/outbox"
)

// Queryer is a *sql.DB or *sql.Tx.
type Queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Errors of Ack and AckStatus.
var (
	// ErrUnknownAlert: no such alert, or (Ack) it was not sent to the
	// contact who acknowledges it.
	ErrUnknownAlert = errors.New("no such alert")
	// ErrNotAuthor: only the author of an alert may ask who acknowledged it.
	ErrNotAuthor = errors.New("not the author of the alert")
)

// NormalizeID returns an alert id as stored (upper case, without a
// leading '#'), or "" if s cannot be one.
func NormalizeID(s string) string {
	s = strings.ToUpper(strings.TrimPrefix(strings.TrimSpace(s), "#"))
	if len(s) != idLen {
		return ""
	}
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune(idAlphabet, rune(s[i])) {
			return ""
		}
	}
	return s
}

func tableExists(ctx context.Context, q Queryer) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('alerts', 'alert_recipients')`).Scan(&n)
	return n == 2, err
}

// AckResult is what Ack did.
type AckResult struct {
	Alert   string
	At      time.Time // when the contact acknowledged (the first time)
	Already bool      // acknowledged before: nothing changed
}

// Ack records that the contact with email acknowledges alert id, at at.
// It is idempotent: a second ACK changes nothing and says when the first
// was. Call it in the transaction that marks the command mail seen. The
// alert must have been sent to email (ErrUnknownAlert otherwise, which
// does not tell whether the alert exists).
func Ack(ctx context.Context, tx *sql.Tx, id, email string, at time.Time) (*AckResult, error) {
	nid := NormalizeID(id)
	if nid == "" {
		return nil, ErrUnknownAlert
	}
	var acked int64
	err := tx.QueryRowContext(ctx, `SELECT acked_at FROM alert_recipients WHERE alert_id = ? AND email = ? AND state = 'queued'`, nid, email).Scan(&acked)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrUnknownAlert
	}
	if err != nil {
		return nil, fmt.Errorf("relay: ack: %w", err)
	}
	if acked != 0 {
		return &AckResult{Alert: nid, At: time.UnixMilli(acked).UTC(), Already: true}, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE alert_recipients SET acked_at = ? WHERE alert_id = ? AND email = ?`, at.UnixMilli(), nid, email); err != nil {
		return nil, fmt.Errorf("relay: ack: %w", err)
	}
	return &AckResult{Alert: nid, At: at.UTC()}, nil
}

// Alert is one alert as the operator and its author see it: who, what
// label, when, and what became of its copies. Never the content.
type Alert struct {
	ID          string    `json:"id"`
	Author      string    `json:"author"`
	AuthorKey   string    `json:"author_key"`
	TLP         string    `json:"tlp"`
	Created     time.Time `json:"created"`
	Recipients  int       `json:"recipients"` // copies queued, the author's own included
	Delivered   int       `json:"delivered"`
	Failed      int       `json:"failed"`
	Waiting     int       `json:"waiting"` // queued or deferred in the outbox
	Skipped     int       `json:"skipped"` // no usable key: no copy
	Acked       int       `json:"acknowledged"`
	TLDs        []TLD     `json:"tlds"` // the ccTLDs it was sent to, the author's own copy aside
	AckedTLDs   int       `json:"acknowledged_tlds"`
	Archived    bool      `json:"archived,omitempty"`
	AuthorCopy  bool      `json:"author_copy"`
	SkippedList []Skipped `json:"skipped_recipients,omitempty"`
}

// TLD is the acknowledgement state of one ccTLD for an alert: it has
// acknowledged when one of its contacts who got the alert did.
type TLD struct {
	TLD     string    `json:"tld"`
	Reached bool      `json:"reached"` // at least one contact got a copy
	Acked   bool      `json:"acknowledged"`
	By      string    `json:"by,omitempty"` // the first contact who acknowledged
	At      time.Time `json:"at,omitzero"`
}

// Filter selects alerts for Alerts.
type Filter struct {
	ID    string // one alert; "" means the most recent
	Limit int    // 0: 50
}

// Alerts returns alerts, newest first, with their delivery and
// acknowledgement counts. An unknown Filter.ID returns ErrUnknownAlert. A
// database without the tables has no alerts.
func Alerts(ctx context.Context, q Queryer, f Filter) ([]Alert, error) {
	ok, err := tableExists(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("relay: alerts: %w", err)
	}
	if !ok {
		if f.ID != "" {
			return nil, ErrUnknownAlert
		}
		return []Alert{}, nil
	}
	if f.Limit <= 0 {
		f.Limit = 50
	}
	query := `SELECT id, author_email, author_fpr, tlp, created, recipients, archive IS NOT NULL FROM alerts`
	var args []any
	if f.ID != "" {
		id := NormalizeID(f.ID)
		if id == "" {
			return nil, ErrUnknownAlert
		}
		query += ` WHERE id = ?`
		args = append(args, id)
	}
	query += ` ORDER BY created DESC, id LIMIT ?`
	args = append(args, f.Limit)
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("relay: alerts: %w", err)
	}
	out := []Alert{}
	for rows.Next() {
		var a Alert
		var created int64
		if err := rows.Scan(&a.ID, &a.Author, &a.AuthorKey, &a.TLP, &created, &a.Recipients, &a.Archived); err != nil {
			rows.Close()
			return nil, fmt.Errorf("relay: alerts: %w", err)
		}
		a.Created = time.UnixMilli(created).UTC()
		out = append(out, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("relay: alerts: %w", err)
	}
	if f.ID != "" && len(out) == 0 {
		return nil, ErrUnknownAlert
	}
	for i := range out {
		if err := fill(ctx, q, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// fill counts the copies of a and works out the state of its ccTLDs.
func fill(ctx context.Context, q Queryer, a *Alert) error {
	// What became of the copies is the outbox's to say.
	statuses, err := outbox.Statuses(ctx, q, Kind, a.ID)
	if err != nil {
		return fmt.Errorf("relay: alert %s: %w", a.ID, err)
	}
	rows, err := q.QueryContext(ctx, `SELECT email, tlds, author, state, reason, acked_at
		FROM alert_recipients WHERE alert_id = ? ORDER BY email`, a.ID)
	if err != nil {
		return fmt.Errorf("relay: alert %s: %w", a.ID, err)
	}
	defer rows.Close()
	tlds := map[string]*TLD{}
	for rows.Next() {
		var email, list, state, reason string
		var author bool
		var acked int64
		if err := rows.Scan(&email, &list, &author, &state, &reason, &acked); err != nil {
			return fmt.Errorf("relay: alert %s: %w", a.ID, err)
		}
		status := statuses[email]
		if state == "skipped" {
			a.Skipped++
			a.SkippedList = append(a.SkippedList, Skipped{Email: email, TLDs: splitTLDs(list), Reason: reason})
		} else {
			switch status {
			case outbox.Sent:
				a.Delivered++
			case outbox.Failed:
				a.Failed++
			default:
				a.Waiting++
			}
		}
		if author {
			a.AuthorCopy = state == "queued"
			continue
		}
		if acked != 0 {
			a.Acked++
		}
		for _, tld := range splitTLDs(list) {
			t := tlds[tld]
			if t == nil {
				t = &TLD{TLD: tld}
				tlds[tld] = t
			}
			t.Reached = t.Reached || state == "queued"
			if acked != 0 {
				at := time.UnixMilli(acked).UTC()
				if !t.Acked || at.Before(t.At) {
					t.Acked, t.By, t.At = true, email, at
				}
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("relay: alert %s: %w", a.ID, err)
	}
	a.TLDs = make([]TLD, 0, len(tlds))
	for _, t := range tlds {
		a.TLDs = append(a.TLDs, *t)
		if t.Acked {
			a.AckedTLDs++
		}
	}
	sort.Slice(a.TLDs, func(i, j int) bool { return a.TLDs[i].TLD < a.TLDs[j].TLD })
	return nil
}

func splitTLDs(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// AckStatus returns alert id for its author (the contact with email):
// which ccTLDs have acknowledged it and which have not. Anyone else gets
// ErrNotAuthor.
func AckStatus(ctx context.Context, q Queryer, id, email string) (*Alert, error) {
	list, err := Alerts(ctx, q, Filter{ID: id, Limit: 1})
	if err != nil {
		return nil, err
	}
	a := &list[0]
	if !strings.EqualFold(a.Author, email) {
		return nil, ErrNotAuthor
	}
	return a, nil
}

// Report is the text of AckStatus for the author: one line per ccTLD.
func (a *Alert) Report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "alert %s (TLP:%s, %s): %d of %d ccTLDs acknowledged\n",
		a.ID, a.TLP, a.Created.Format("2006-01-02 15:04 UTC"), a.AckedTLDs, len(a.TLDs))
	var yes, no []string
	for _, t := range a.TLDs {
		switch {
		case t.Acked:
			yes = append(yes, fmt.Sprintf("  .%-10s acknowledged by %s at %s", t.TLD, t.By, t.At.Format("2006-01-02 15:04 UTC")))
		case !t.Reached:
			no = append(no, fmt.Sprintf("  .%-10s not reached (no usable key)", t.TLD))
		default:
			no = append(no, fmt.Sprintf("  .%-10s not yet", t.TLD))
		}
	}
	if len(yes) > 0 {
		b.WriteString("acknowledged:\n" + strings.Join(yes, "\n") + "\n")
	}
	if len(no) > 0 {
		b.WriteString("not acknowledged:\n" + strings.Join(no, "\n") + "\n")
	}
	fmt.Fprintf(&b, "copies: %d delivered, %d waiting, %d failed, %d without a usable key", a.Delivered, a.Waiting, a.Failed, a.Skipped)
	return b.String()
}

// postTimes returns when the alerts by the contact email that were
// relayed after since were recorded, oldest first: what the per-author
// limits count (refused posts are not alerts and do not count).
func postTimes(ctx context.Context, q Queryer, email string, since time.Time) ([]time.Time, error) {
	rows, err := q.QueryContext(ctx, `SELECT created FROM alerts WHERE author_email = ? AND created > ? ORDER BY created`, email, since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("relay: count posts: %w", err)
	}
	defer rows.Close()
	var out []time.Time
	for rows.Next() {
		var ms int64
		if err := rows.Scan(&ms); err != nil {
			return nil, err
		}
		out = append(out, time.UnixMilli(ms).UTC())
	}
	return out, rows.Err()
}

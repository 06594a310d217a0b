package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kinds of message the directory sends.
const (
	KindDigest = "digest"
	KindReply  = "reply"
	KindAlert  = "alert"
)

// MaxMessageBytes is the largest message Enqueue accepts.
const MaxMessageBytes = 25 << 20

// Message is one outgoing mail to one envelope recipient.
type Message struct {
	ID   int64  // set by the outbox; ignored by Enqueue
	Kind string // "digest", "reply", "alert"
	Ref  string // what the message belongs to, e.g. the digest id
	From string // envelope sender (the directory address)
	To   string // one envelope recipient
	Data []byte // the whole RFC 5322 message, CRLF line endings
}

// Status is the state of a queued message.
type Status string

const (
	Queued   Status = "queued"   // waiting for its first attempt, or retried by hand
	Deferred Status = "deferred" // a temporary failure; due again at NextAttempt
	Sent     Status = "sent"     // accepted by the transport
	Failed   Status = "failed"   // a permanent failure, or retried for too long
)

// Row describes a queued message without its body.
type Row struct {
	ID          int64     `json:"id"`
	Kind        string    `json:"kind"`
	Ref         string    `json:"ref"`
	From        string    `json:"from"`
	To          string    `json:"to"`
	Status      Status    `json:"status"`
	Attempts    int       `json:"attempts"`
	Created     time.Time `json:"created"`
	NextAttempt time.Time `json:"next_attempt"`
	SentAt      time.Time `json:"sent_at"` // zero unless Status is Sent
	LastError   string    `json:"last_error"`
	Size        int       `json:"size"`
}

// Filter selects rows. Empty fields match everything; Limit 0 means no limit.
type Filter struct {
	Kind   string
	Ref    string
	Status []Status
	Limit  int
}

// Outbox is the queue, stored in the table outbox of a SQLite database.
// It is safe for concurrent use.
type Outbox struct {
	db *sql.DB

	// Now is the clock used for timestamps written by Enqueue and Retry;
	// nil means time.Now. Set it before use.
	Now func() time.Time
}

// Times are stored as Unix milliseconds. window_start is when the current
// retry window began (created, or the last Retry); body is NULL once sent.
const schema = `
CREATE TABLE IF NOT EXISTS outbox (
	id           INTEGER PRIMARY KEY,
	kind         TEXT NOT NULL,
	ref          TEXT NOT NULL,
	sender       TEXT NOT NULL,
	rcpt         TEXT NOT NULL,
	body         BLOB,
	size         INTEGER NOT NULL,
	status       TEXT NOT NULL CHECK (status IN ('queued', 'deferred', 'sent', 'failed')),
	attempts     INTEGER NOT NULL DEFAULT 0,
	created      INTEGER NOT NULL,
	window_start INTEGER NOT NULL,
	next_attempt INTEGER NOT NULL,
	sent_at      INTEGER NOT NULL DEFAULT 0,
	last_error   TEXT NOT NULL DEFAULT '',
	UNIQUE (kind, ref, rcpt)
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt);
`

// Open prepares the outbox table in db (created if missing). db is
// expected to be the directory's single-connection writer.
func Open(ctx context.Context, db *sql.DB) (*Outbox, error) {
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return nil, fmt.Errorf("outbox: create table: %w", err)
	}
	return &Outbox{db: db}, nil
}

func (o *Outbox) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// Enqueue adds messages in one transaction. A message whose (Kind, Ref, To)
// is already queued is skipped, not an error, so that an interrupted run
// can be resumed; added counts the new rows.
func (o *Outbox) Enqueue(ctx context.Context, msgs ...Message) (added int, err error) {
	if err := validate(msgs); err != nil {
		return 0, err
	}
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("outbox: enqueue: %w", err)
	}
	defer tx.Rollback()
	n, err := o.EnqueueTx(ctx, tx, msgs...)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("outbox: enqueue: %w", err)
	}
	return n, nil
}

// EnqueueTx is Enqueue inside the caller's transaction, so that a digest
// and its messages can be recorded together.
func (o *Outbox) EnqueueTx(ctx context.Context, tx *sql.Tx, msgs ...Message) (int, error) {
	if err := validate(msgs); err != nil {
		return 0, err
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO outbox
		(kind, ref, sender, rcpt, body, size, status, created, window_start, next_attempt)
		VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)
		ON CONFLICT (kind, ref, rcpt) DO NOTHING`)
	if err != nil {
		return 0, fmt.Errorf("outbox: enqueue: %w", err)
	}
	defer stmt.Close()
	now := o.now().UnixMilli()
	added := 0
	for _, m := range msgs {
		res, err := stmt.ExecContext(ctx, m.Kind, m.Ref, m.From, m.To, m.Data, len(m.Data), now, now, now)
		if err != nil {
			return 0, fmt.Errorf("outbox: enqueue %s %s to %s: %w", m.Kind, m.Ref, m.To, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, fmt.Errorf("outbox: enqueue: %w", err)
		}
		added += int(n)
	}
	return added, nil
}

// ErrInvalid is wrapped by errors about messages Enqueue refuses.
var ErrInvalid = errors.New("invalid message")

func validate(msgs []Message) error {
	for i, m := range msgs {
		bad := func(format string, args ...any) error {
			return fmt.Errorf("outbox: message %d: %w: %s", i, ErrInvalid, fmt.Sprintf(format, args...))
		}
		if !isWord(m.Kind) {
			return bad("kind %q is not a lowercase word", m.Kind)
		}
		if m.Ref == "" || len(m.Ref) > 200 || hasControl(m.Ref) {
			return bad("ref must be 1 to 200 printable characters")
		}
		if err := CheckAddress(m.From); err != nil {
			return bad("sender: %v", err)
		}
		if err := CheckAddress(m.To); err != nil {
			return bad("recipient: %v", err)
		}
		if len(m.Data) == 0 {
			return bad("empty message to %s", m.To)
		}
		if len(m.Data) > MaxMessageBytes {
			return bad("message to %s is %d bytes, more than %d", m.To, len(m.Data), MaxMessageBytes)
		}
	}
	return nil
}

func isWord(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && r != '-' && r != '_' {
			return false
		}
	}
	return true
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return true
		}
	}
	return false
}

// CheckAddress refuses envelope addresses that could be mistaken for
// options or that break a protocol line: empty, longer than 254 bytes,
// starting with '-', containing whitespace, control characters or angle
// brackets, or without '@'.
func CheckAddress(addr string) error {
	switch {
	case addr == "":
		return errors.New("empty address")
	case len(addr) > 254:
		return errors.New("address longer than 254 bytes")
	case addr[0] == '-':
		return fmt.Errorf("address %q starts with '-'", addr)
	case strings.ContainsAny(addr, "<>"):
		return fmt.Errorf("address %q contains angle brackets", addr)
	case !strings.Contains(addr, "@"):
		return fmt.Errorf("address %q has no '@'", addr)
	}
	for _, r := range addr {
		if r <= ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u00a0' || r == '\u2028' || r == '\u2029' || r == '\ufeff' {
			return fmt.Errorf("address %q contains whitespace or a control character", addr)
		}
	}
	return nil
}

const rowColumns = `id, kind, ref, sender, rcpt, status, attempts, created, next_attempt, sent_at, last_error, size`

func scanRow(sc interface{ Scan(...any) error }) (Row, error) {
	var r Row
	var status string
	var created, next, sent int64
	err := sc.Scan(&r.ID, &r.Kind, &r.Ref, &r.From, &r.To, &status, &r.Attempts, &created, &next, &sent, &r.LastError, &r.Size)
	r.Status = Status(status)
	r.Created = fromMilli(created)
	r.NextAttempt = fromMilli(next)
	r.SentAt = fromMilli(sent)
	return r, err
}

func fromMilli(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// where builds the WHERE clause for f.
func (f Filter) where() (string, []any) {
	var conds []string
	var args []any
	if f.Kind != "" {
		conds = append(conds, "kind = ?")
		args = append(args, f.Kind)
	}
	if f.Ref != "" {
		conds = append(conds, "ref = ?")
		args = append(args, f.Ref)
	}
	if len(f.Status) > 0 {
		conds = append(conds, "status IN (?"+strings.Repeat(", ?", len(f.Status)-1)+")")
		for _, s := range f.Status {
			args = append(args, string(s))
		}
	}
	if len(conds) == 0 {
		return "1", nil
	}
	return strings.Join(conds, " AND "), args
}

// List returns the rows matching f, oldest first, without their bodies.
func (o *Outbox) List(ctx context.Context, f Filter) ([]Row, error) {
	w, args := f.where()
	q := `SELECT ` + rowColumns + ` FROM outbox WHERE ` + w + ` ORDER BY id`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	rows, err := o.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("outbox: list: %w", err)
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, fmt.Errorf("outbox: list: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: list: %w", err)
	}
	return out, nil
}

// Counts returns how many messages of kind and ref (empty: any) are in
// each status. Every status is present in the map, possibly with 0.
func (o *Outbox) Counts(ctx context.Context, kind, ref string) (map[Status]int, error) {
	w, args := Filter{Kind: kind, Ref: ref}.where()
	rows, err := o.db.QueryContext(ctx, `SELECT status, count(*) FROM outbox WHERE `+w+` GROUP BY status`, args...)
	if err != nil {
		return nil, fmt.Errorf("outbox: counts: %w", err)
	}
	defer rows.Close()
	out := map[Status]int{Queued: 0, Deferred: 0, Sent: 0, Failed: 0}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, fmt.Errorf("outbox: counts: %w", err)
		}
		out[Status(s)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: counts: %w", err)
	}
	return out, nil
}

// Retry makes failed and deferred messages due now, with a fresh retry
// window: ids selects them, nil means every failed and deferred message.
// Sent and queued messages are left alone. It returns how many changed.
func (o *Outbox) Retry(ctx context.Context, ids []int64) (int, error) {
	now := o.now().UnixMilli()
	const set = `UPDATE outbox SET status = 'queued', next_attempt = ?, window_start = ?
		WHERE status IN ('failed', 'deferred')`
	if ids == nil {
		res, err := o.db.ExecContext(ctx, set, now, now)
		if err != nil {
			return 0, fmt.Errorf("outbox: retry: %w", err)
		}
		n, err := res.RowsAffected()
		return int(n), err
	}
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("outbox: retry: %w", err)
	}
	defer tx.Rollback()
	total := 0
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		args := []any{now, now}
		for _, id := range chunk {
			args = append(args, id)
		}
		res, err := tx.ExecContext(ctx, set+` AND id IN (?`+strings.Repeat(", ?", len(chunk)-1)+`)`, args...)
		if err != nil {
			return 0, fmt.Errorf("outbox: retry: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, fmt.Errorf("outbox: retry: %w", err)
		}
		total += int(n)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("outbox: retry: %w", err)
	}
	return total, nil
}

// Queryer is what CountSince reads through: a *sql.DB or the *sql.Tx of
// a caller that counts and queues in one transaction.
type Queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// CountSince counts the messages of kind to one recipient queued since t,
// whatever became of them: what rate limits (replies per contact, key
// requests per sender) are built on.
func CountSince(ctx context.Context, q Queryer, kind, to string, since time.Time) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM outbox WHERE kind = ? AND rcpt = ? AND created >= ?`,
		kind, to, since.UnixMilli()).Scan(&n)
	return n, err
}

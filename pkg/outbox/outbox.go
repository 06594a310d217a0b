package outbox

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Kinds of message the directory sends.
const (
	KindDigest = "digest"
	KindReply  = "reply"
	KindAlert  = "alert"
)

// MaxMessageBytes is the largest message Enqueue accepts, counting its
// shared part and tail, and the largest shared part PutBlob accepts.
const MaxMessageBytes = 25 << 20

// Message is one outgoing mail to one envelope recipient.
//
// The message on the wire is Data, then Shared, then Tail, written one
// after the other with nothing added or removed between them: an RFC 5322
// message with CRLF line endings, which may be cut anywhere, even inside
// a line or a CRLF. Most messages are whole in Data. Many messages that
// share a big part (one digest or list post to many recipients) carry
// only their own head in Data and Tail, and name the shared part, stored
// once with PutBlob, by Blob.
type Message struct {
	ID   int64  // set by the outbox; ignored by Enqueue
	Kind string // "digest", "reply", "alert"
	Ref  string // what the message belongs to, e.g. the digest id
	From string // envelope sender (the directory address)
	To   string // one envelope recipient
	Data []byte // the message, or its head when it has a shared part; never empty

	// Blob is the id of the shared part, as returned by PutBlob or
	// PutBlobTx; 0 means none.
	Blob int64
	// Shared holds the bytes of the shared part. Deliver fills it in
	// before Session.Send; Enqueue ignores it. Many messages hold the same
	// slice at once: it must never be modified.
	Shared []byte
	// Tail is written after the shared part; only with Blob.
	Tail []byte
}

// Parts returns the non-empty parts of the message in the order they go
// on the wire: Data, Shared, Tail.
func (m *Message) Parts() [][]byte {
	parts := make([][]byte, 0, 3)
	for _, p := range [...][]byte{m.Data, m.Shared, m.Tail} {
		if len(p) > 0 {
			parts = append(parts, p)
		}
	}
	return parts
}

// Len is the length of the message on the wire: Data, Shared and Tail.
func (m *Message) Len() int { return len(m.Data) + len(m.Shared) + len(m.Tail) }

// Status is the state of a queued message.
type Status string

const (
	Queued   Status = "queued"   // waiting for its first attempt, or retried by hand
	Deferred Status = "deferred" // a temporary failure; due again at NextAttempt
	Sent     Status = "sent"     // accepted by the transport
	Failed   Status = "failed"   // a permanent failure, or retried for too long
	Bounced  Status = "bounced"  // sent, then a delivery status notification said it failed (Bounced)
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
	SentAt      time.Time `json:"sent_at"` // zero unless Status is Sent (or Bounced)
	// BouncedAt is when the delivery status notification came (Bounced);
	// zero unless Status is Bounced.
	BouncedAt time.Time `json:"bounced_at"`
	// FailedAt is when the message became failed; zero unless Status is
	// Failed, and for messages that failed before outbox migration 4.
	FailedAt  time.Time `json:"failed_at"`
	LastError string    `json:"last_error"`
	Size      int       `json:"size"` // on the wire: head, shared part and tail
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

	// Key is the outbox key (KeySize bytes, kept outside the database,
	// beside the directory's secret key): Enqueue stores with every row
	// a MAC made with it, and Deliver sends only rows whose MAC it
	// checks, so that someone who can write the database but not the
	// key cannot make the directory send their mail. Without it Enqueue
	// and Deliver refuse (ErrNoKey); List, Counts and Retry work. Set it
	// before use.
	Key []byte

	// Bounce is the bounce address, LOCAL-bounces@DOMAIN: with it, every
	// message Enqueue queues goes out from LOCAL-bounces+TAG@DOMAIN
	// (BounceSender), whatever Message.From says, so that a delivery
	// status notification names the message it is about (Bounced). ""
	// keeps Message.From. Set it before use.
	Bounce string
}

// Open returns the outbox kept in db, whose tables Migrations made
// (directory.Open applies them). db is expected to be the directory's
// pool for operational tables (directory.Store.DB).
func Open(ctx context.Context, db *sql.DB) (*Outbox, error) {
	ok, err := current(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("outbox: open: %w", err)
	}
	if !ok {
		return nil, errors.New("outbox: open: the outbox tables are missing or incomplete: the database was not opened with outbox.Migrations")
	}
	return &Outbox{db: db}, nil
}

// current reports whether the outbox tables, columns and indexes are all
// there, reading the schema only.
func current(ctx context.Context, db *sql.DB) (bool, error) {
	var n int
	err := db.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('outbox', 'outbox_blob')) +
		(SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name IN ('outbox_due', 'outbox_blob_ref', 'outbox_rcpt')) +
		(SELECT count(*) FROM pragma_table_info('outbox') WHERE name IN ('blob', 'tail', 'mac', 'bounced_at', 'failed_at'))`).Scan(&n)
	return n == 10, err
}

func (o *Outbox) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// Enqueue adds messages in one transaction. A message whose (Kind, Ref, To)
// is already queued is skipped, not an error, so that an interrupted run
// can be resumed; added counts the new rows. A refused message (an error
// wrapping ErrInvalid) refuses the whole batch.
func (o *Outbox) Enqueue(ctx context.Context, msgs ...Message) (added int, err error) {
	if err := o.checkKey(); err != nil {
		return 0, err
	}
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
// and its messages can be recorded together. Every message is checked
// before any is written: a refused batch writes nothing.
//
// A message with a Blob must name a shared part that exists in tx: store
// it with PutBlobTx in the same transaction. Deliver deletes the shared
// parts no message refers to, so an id kept from an earlier transaction
// may be gone; PutBlobTx with the same bytes is cheap and returns the id
// to use.
func (o *Outbox) EnqueueTx(ctx context.Context, tx *sql.Tx, msgs ...Message) (int, error) {
	if err := o.checkKey(); err != nil {
		return 0, err
	}
	if err := validate(msgs); err != nil {
		return 0, err
	}
	sizes, sums, err := checkShared(ctx, tx, msgs)
	if err != nil {
		return 0, err
	}
	// With a bounce address, the envelope sender carries the row's id
	// (BounceSender), known only once the row is in: the row goes in
	// with the plain bounce address and no MAC, then gets its tagged
	// sender and the MAC over it, in the same transaction, so no row is
	// ever committed without a MAC of what it sends.
	insert := `INSERT INTO outbox
		(kind, ref, sender, rcpt, body, blob, tail, size, status, created, window_start, next_attempt, mac)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)
		ON CONFLICT (kind, ref, rcpt) DO NOTHING`
	var tag *sql.Stmt
	if o.Bounce != "" {
		// The longest tagged sender must be a good address too.
		if err := CheckAddress(o.BounceSender(o.Bounce, math.MaxInt64, "", "", "")); err != nil {
			return 0, fmt.Errorf("outbox: enqueue: %w: bounce address: %v", ErrInvalid, err)
		}
		insert += ` RETURNING id`
		var err error
		if tag, err = tx.PrepareContext(ctx, `UPDATE outbox SET sender = ?, mac = ? WHERE id = ?`); err != nil {
			return 0, fmt.Errorf("outbox: enqueue: %w", err)
		}
		defer tag.Close()
	}
	stmt, err := tx.PrepareContext(ctx, insert)
	if err != nil {
		return 0, fmt.Errorf("outbox: enqueue: %w", err)
	}
	defer stmt.Close()
	now := o.now().UnixMilli()
	added := 0
	for i, m := range msgs {
		blob := sql.NullInt64{Int64: m.Blob, Valid: m.Blob != 0}
		var tail any // NULL, not an empty blob
		if len(m.Tail) > 0 {
			tail = m.Tail
		}
		if tag != nil {
			var id int64
			err := stmt.QueryRowContext(ctx, m.Kind, m.Ref, o.Bounce, m.To, m.Data, blob, tail, sizes[i], now, now, now, nil).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				continue // queued before
			}
			if err != nil {
				return 0, fmt.Errorf("outbox: enqueue %s %s to %s: %w", m.Kind, m.Ref, m.To, err)
			}
			from := o.BounceSender(o.Bounce, id, m.Kind, m.Ref, m.To)
			mac := o.mac(m.Kind, m.Ref, from, m.To, m.Data, sums[i], m.Tail)
			if _, err := tag.ExecContext(ctx, from, mac, id); err != nil {
				return 0, fmt.Errorf("outbox: enqueue %s %s to %s: %w", m.Kind, m.Ref, m.To, err)
			}
			added++
			continue
		}
		mac := o.mac(m.Kind, m.Ref, m.From, m.To, m.Data, sums[i], m.Tail)
		res, err := stmt.ExecContext(ctx, m.Kind, m.Ref, m.From, m.To, m.Data, blob, tail, sizes[i], now, now, now, mac)
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

// checkShared checks that the shared part of each message exists and that
// the whole message is not too big. It returns the size of each message
// on the wire and the SHA-256 of its shared part (nil for none) as
// PutBlobTx recorded it, which the message's MAC covers: Deliver checks it
// against the bytes it reads. Each distinct shared part is looked up once.
func checkShared(ctx context.Context, tx *sql.Tx, msgs []Message) ([]int, []*[sha256.Size]byte, error) {
	type part struct {
		size int
		sum  *[sha256.Size]byte
	}
	parts := map[int64]part{}
	sizes := make([]int, len(msgs))
	sums := make([]*[sha256.Size]byte, len(msgs))
	for i, m := range msgs {
		size := len(m.Data) + len(m.Tail)
		if m.Blob != 0 {
			p, ok := parts[m.Blob]
			if !ok {
				var sum []byte
				err := tx.QueryRowContext(ctx, `SELECT length(data), sha256 FROM outbox_blob WHERE id = ?`, m.Blob).Scan(&p.size, &sum)
				if errors.Is(err, sql.ErrNoRows) {
					return nil, nil, invalid(i, "shared part %d does not exist", m.Blob)
				}
				if err != nil {
					return nil, nil, fmt.Errorf("outbox: enqueue: shared part %d: %w", m.Blob, err)
				}
				if len(sum) != sha256.Size {
					return nil, nil, fmt.Errorf("outbox: enqueue: shared part %d: %d bytes of SHA-256", m.Blob, len(sum))
				}
				p.sum = (*[sha256.Size]byte)(sum)
				parts[m.Blob] = p
			}
			size += p.size
			sums[i] = p.sum
		}
		if size > MaxMessageBytes {
			return nil, nil, invalid(i, "message to %s is %d bytes, more than %d", m.To, size, MaxMessageBytes)
		}
		sizes[i] = size
	}
	return sizes, sums, nil
}

// PutBlob stores data as a shared part of messages, in its own
// transaction, and returns its id for Message.Blob. The same data always
// gets the same id, and is stored once. Empty data and data of more than
// MaxMessageBytes are refused with an error wrapping ErrInvalid.
//
// A shared part that no message refers to is deleted at the end of every
// Deliver, which may run between PutBlob and the Enqueue that uses it
// (Enqueue then refuses the messages). A caller that may run beside
// Deliver stores the shared part and its messages in one transaction with
// PutBlobTx and EnqueueTx.
func (o *Outbox) PutBlob(ctx context.Context, data []byte) (int64, error) {
	if err := checkBlob(data); err != nil {
		return 0, err
	}
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("outbox: store shared part: %w", err)
	}
	defer tx.Rollback()
	id, err := o.PutBlobTx(ctx, tx, data)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("outbox: store shared part: %w", err)
	}
	return id, nil
}

// PutBlobTx is PutBlob inside the caller's transaction.
func (o *Outbox) PutBlobTx(ctx context.Context, tx *sql.Tx, data []byte) (int64, error) {
	if err := checkBlob(data); err != nil {
		return 0, err
	}
	sum := sha256.Sum256(data)
	if _, err := tx.ExecContext(ctx, `INSERT INTO outbox_blob (sha256, data) VALUES (?, ?)
		ON CONFLICT (sha256) DO NOTHING`, sum[:], data); err != nil {
		return 0, fmt.Errorf("outbox: store shared part: %w", err)
	}
	var id int64
	if err := tx.QueryRowContext(ctx, `SELECT id FROM outbox_blob WHERE sha256 = ?`, sum[:]).Scan(&id); err != nil {
		return 0, fmt.Errorf("outbox: store shared part: %w", err)
	}
	return id, nil
}

func checkBlob(data []byte) error {
	switch {
	case len(data) == 0:
		return fmt.Errorf("outbox: shared part: %w: empty", ErrInvalid)
	case len(data) > MaxMessageBytes:
		return fmt.Errorf("outbox: shared part: %w: %d bytes, more than %d", ErrInvalid, len(data), MaxMessageBytes)
	}
	return nil
}

// ErrInvalid is wrapped by errors about messages Enqueue refuses.
var ErrInvalid = errors.New("invalid message")

// invalid is the error about the i-th message of a batch.
func invalid(i int, format string, args ...any) error {
	return fmt.Errorf("outbox: message %d: %w: %s", i, ErrInvalid, fmt.Sprintf(format, args...))
}

// validate checks what can be checked without the database.
func validate(msgs []Message) error {
	for i, m := range msgs {
		switch {
		case !isWord(m.Kind):
			return invalid(i, "kind %q is not a lowercase word", m.Kind)
		case m.Ref == "" || len(m.Ref) > 200 || hasControl(m.Ref):
			return invalid(i, "ref must be 1 to 200 printable characters")
		}
		if err := CheckAddress(m.From); err != nil {
			return invalid(i, "sender: %v", err)
		}
		if err := CheckAddress(m.To); err != nil {
			return invalid(i, "recipient: %v", err)
		}
		switch {
		case len(m.Data) == 0:
			return invalid(i, "empty message to %s", m.To)
		case m.Blob < 0:
			return invalid(i, "shared part %d does not exist", m.Blob)
		case len(m.Tail) > 0 && m.Blob == 0:
			return invalid(i, "message to %s has a tail but no shared part", m.To)
		case len(m.Data)+len(m.Tail) > MaxMessageBytes:
			return invalid(i, "message to %s is %d bytes, more than %d", m.To, len(m.Data)+len(m.Tail), MaxMessageBytes)
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

// listColumns are the columns scanRow reads: rowColumns and the times
// of the events that end a message (the rows Deliver reads are queued
// or deferred, which have none).
const listColumns = rowColumns + `, bounced_at, failed_at`

func scanRow(sc interface{ Scan(...any) error }) (Row, error) {
	var r Row
	var status string
	var created, next, sent, bounced, failed int64
	err := sc.Scan(&r.ID, &r.Kind, &r.Ref, &r.From, &r.To, &status, &r.Attempts, &created, &next, &sent, &r.LastError, &r.Size, &bounced, &failed)
	r.Status = Status(status)
	r.Created = fromMilli(created)
	r.NextAttempt = fromMilli(next)
	r.SentAt = fromMilli(sent)
	r.BouncedAt = fromMilli(bounced)
	r.FailedAt = fromMilli(failed)
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
	q := `SELECT ` + listColumns + ` FROM outbox WHERE ` + w + ` ORDER BY id`
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
	out := map[Status]int{Queued: 0, Deferred: 0, Sent: 0, Failed: 0, Bounced: 0}
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
	const set = `UPDATE outbox SET status = 'queued', next_attempt = ?, window_start = ?, failed_at = 0
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

// CountKindSince counts the messages of kind queued since t, to anyone,
// whatever became of them: what an overall rate limit (key requests per
// hour) is built on.
func CountKindSince(ctx context.Context, q Queryer, kind string, since time.Time) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM outbox WHERE kind = ? AND created >= ?`,
		kind, since.UnixMilli()).Scan(&n)
	return n, err
}

// RecipientsSince returns the recipient of every message of kind queued
// since t, whatever became of it (one entry per message): what a rate
// limit per recipient domain is built on.
func RecipientsSince(ctx context.Context, q RowsQueryer, kind string, since time.Time) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT rcpt FROM outbox WHERE kind = ? AND created >= ?`, kind, since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("outbox: recipients: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var rcpt string
		if err := rows.Scan(&rcpt); err != nil {
			return nil, err
		}
		out = append(out, rcpt)
	}
	return out, rows.Err()
}

// RowsQueryer is what Statuses reads through: a *sql.DB or *sql.Tx.
type RowsQueryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Statuses returns the status of every message of kind and ref, by
// recipient: how another package that keeps its own record of what it
// queued (the list's alerts) learns what became of it.
func Statuses(ctx context.Context, q RowsQueryer, kind, ref string) (map[string]Status, error) {
	rows, err := q.QueryContext(ctx, `SELECT rcpt, status FROM outbox WHERE kind = ? AND ref = ?`, kind, ref)
	if err != nil {
		return nil, fmt.Errorf("outbox: statuses: %w", err)
	}
	defer rows.Close()
	out := map[string]Status{}
	for rows.Next() {
		var rcpt string
		var st Status
		if err := rows.Scan(&rcpt, &st); err != nil {
			return nil, fmt.Errorf("outbox: statuses: %w", err)
		}
		out[rcpt] = st
	}
	return out, rows.Err()
}

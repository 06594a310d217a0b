package digest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/outbox"
)

// incomplete returns the digest whose recipients are not all queued yet.
func (j *Job) incomplete(ctx context.Context) (int64, error) {
	var id int64
	err := j.Store.DB().QueryRowContext(ctx, `SELECT id FROM digests WHERE queued IS NULL ORDER BY id LIMIT 1`).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return id, err
}

// lastDigest returns the time of the newest digest and the ledger entry
// it was made at (serial 0 if there is none).
func (j *Job) lastDigest(ctx context.Context) (time.Time, directory.At, error) {
	var created string
	var at directory.At
	err := j.Store.DB().QueryRowContext(ctx, `SELECT created, serial, head FROM digests ORDER BY id DESC LIMIT 1`).Scan(&created, &at.Serial, &at.Hash)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, directory.At{}, nil
	}
	if err != nil {
		return time.Time{}, directory.At{}, err
	}
	t, err := time.Parse(time.RFC3339, created)
	return t, at, err
}

// record writes a new digest at the current head and its recipient list,
// in one transaction. The recipients and their keys are the directory as
// its signed ledger says it is (checked): a key written into the tables
// without the directory key gets no digest, and the run fails with a
// *directory.TamperError. last is the last digest's entry, which the
// same replay reads for queue.
func (j *Job) record(ctx context.Context, last directory.At, kr *keyring) (int64, error) {
	snap, _, err := j.checked(ctx, last)
	if err != nil {
		return 0, err
	}
	prevSerial := last.Serial
	now := kr.t
	rcpts, skipped := recipients(snap, kr)
	tx, err := j.Store.DB().BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	r, err := tx.ExecContext(ctx, `INSERT INTO digests (serial, head, prev_serial, prev_head, created) VALUES (?, ?, ?, ?, ?)`,
		snap.Head.Serial, snap.Head.Hash, prevSerial, last.Hash, now.Format(time.RFC3339))
	if err != nil {
		return 0, err
	}
	id, err := r.LastInsertId()
	if err != nil {
		return 0, err
	}
	for _, rc := range rcpts {
		if _, err := tx.ExecContext(ctx, `INSERT INTO digest_recipients (digest_id, email, fingerprint, state) VALUES (?, ?, ?, 'pending')`,
			id, rc.contact.Email, rc.contact.Key.Fingerprint); err != nil {
			return 0, err
		}
	}
	for _, s := range skipped {
		if _, err := tx.ExecContext(ctx, `INSERT INTO digest_recipients (digest_id, email, fingerprint, state, reason) VALUES (?, ?, '', 'skipped', ?)`,
			id, s.Email, s.Reason); err != nil {
			return 0, err
		}
	}
	return id, tx.Commit()
}

// DigestInfo is one past digest, for `ccdir digest status`.
type DigestInfo struct {
	ID         int64  `json:"id"`
	Serial     int64  `json:"serial"`
	Head       string `json:"head"`
	Created    string `json:"created"`
	Queued     bool   `json:"queued"`
	Recipients int    `json:"recipients"`
	Sent       int    `json:"sent"`
	Waiting    int    `json:"waiting"` // queued or deferred in the outbox, or not queued yet
	Failed     int    `json:"failed"`
	Skipped    int    `json:"skipped"`
}

// Digests lists the digests, newest first, with their delivery counts.
func Digests(ctx context.Context, db *sql.DB) ([]DigestInfo, error) {
	rows, err := db.QueryContext(ctx, `SELECT d.id, d.serial, d.head, d.created, d.queued IS NOT NULL,
		(SELECT count(*) FROM digest_recipients r WHERE r.digest_id = d.id AND r.state != 'skipped'),
		(SELECT count(*) FROM digest_recipients r WHERE r.digest_id = d.id AND r.state = 'skipped')
		FROM digests d ORDER BY d.id DESC`)
	if err != nil {
		return nil, err
	}
	var out []DigestInfo
	for rows.Next() {
		var d DigestInfo
		if err := rows.Scan(&d.ID, &d.Serial, &d.Head, &d.Created, &d.Queued, &d.Recipients, &d.Skipped); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	ob, err := outbox.Open(ctx, db)
	if err != nil {
		return nil, err
	}
	for i := range out {
		counts, err := ob.Counts(ctx, Kind, strconv.FormatInt(out[i].ID, 10))
		if err != nil {
			return nil, err
		}
		out[i].Sent, out[i].Failed = counts[outbox.Sent], counts[outbox.Failed]
		out[i].Waiting = out[i].Recipients - out[i].Sent - out[i].Failed
	}
	return out, nil
}

// RecipientState is one recipient of a digest.
type RecipientState struct {
	Email    string `json:"email"`
	State    string `json:"state"` // skipped, pending (not queued yet), or the outbox status
	Attempts int    `json:"attempts"`
	Detail   string `json:"detail"` // why skipped, or the last delivery error
	// Unreachable, set by the caller, says why the recipient is
	// unreachable now (bounces.limit bounces in a row), or is empty.
	Unreachable string `json:"unreachable,omitempty"`
}

// Recipients lists the recipients of one digest with their state.
func Recipients(ctx context.Context, db *sql.DB, id int64) ([]RecipientState, error) {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM digests WHERE id = ?`, id).Scan(&n); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, &directory.Error{Err: directory.ErrNotFound, Msg: fmt.Sprintf("no digest %d", id), Hint: "list them with: ccdir digest status"}
	}
	ob, err := outbox.Open(ctx, db)
	if err != nil {
		return nil, err
	}
	msgs, err := ob.List(ctx, outbox.Filter{Kind: Kind, Ref: strconv.FormatInt(id, 10)})
	if err != nil {
		return nil, err
	}
	byEmail := map[string]outbox.Row{}
	for _, m := range msgs {
		byEmail[m.To] = m
	}
	rows, err := db.QueryContext(ctx, `SELECT email, state, reason FROM digest_recipients WHERE digest_id = ? ORDER BY email`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []RecipientState
	for rows.Next() {
		var r RecipientState
		if err := rows.Scan(&r.Email, &r.State, &r.Detail); err != nil {
			return nil, err
		}
		if m, ok := byEmail[r.Email]; ok && r.State == "queued" {
			r.State, r.Attempts, r.Detail = string(m.Status), m.Attempts, m.LastError
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

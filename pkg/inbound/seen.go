package inbound

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrReplay: MarkSeen found the signature already recorded.
var ErrReplay = errors.New("signature already seen")

// RowQueryer is what IsSeen needs: a *sql.DB, *sql.Tx or *sql.Conn.
type RowQueryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// IsSeen reports whether digest (Accepted.Seen) is recorded.
func IsSeen(ctx context.Context, q RowQueryer, digest string) (bool, error) {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM seen_signatures WHERE digest = ?`, digest).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("inbound: seen signatures: %w", err)
	}
	return true, nil
}

// SeenRetention is how long seen signatures are kept at the least,
// whatever the window: a run with a shorter commands.window must not
// forget what a run with a longer one still accepts.
const SeenRetention = 7 * 24 * time.Hour

// ForgottenBefore returns the time before which Prune has deleted seen
// signatures (the zero time if it never has): a signature dated before it
// may have been seen, and is refused whatever the window.
func ForgottenBefore(ctx context.Context, q RowQueryer) (time.Time, error) {
	var before int64
	err := q.QueryRowContext(ctx, `SELECT forgotten_before FROM seen_horizon WHERE id = 1`).Scan(&before)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, fmt.Errorf("inbound: seen signatures horizon: %w", err)
	}
	return time.Unix(before, 0), nil
}

// MarkSeen records digest. at should be the signature's time
// (Accepted.SignedAt): Prune drops an entry once it is older than the
// retention, when freshness alone refuses the signature. It returns
// ErrReplay if digest is already recorded, or if at is before the time
// Prune has forgotten (ForgottenBefore): whether that signature was seen
// is no longer known, or if the statement is the evidence of a ledger
// entry already (EvidenceSeen). Call it inside the transaction that executes the
// commands, so that the check and the effect commit together.
func MarkSeen(ctx context.Context, tx *sql.Tx, digest string, at time.Time) error {
	if digest == "" {
		return errors.New("inbound: MarkSeen: empty digest")
	}
	forgotten, err := ForgottenBefore(ctx, tx)
	if err != nil {
		return err
	}
	if at.Before(forgotten) {
		return fmt.Errorf("%w: signed before %s, which is no longer remembered", ErrReplay, forgotten.UTC().Format(time.RFC3339))
	}
	res, err := tx.ExecContext(ctx,
		`INSERT INTO seen_signatures(digest, seen) VALUES (?, ?) ON CONFLICT(digest) DO NOTHING`,
		digest, at.Unix())
	if err != nil {
		return fmt.Errorf("inbound: mark signature seen: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("inbound: mark signature seen: %w", err)
	}
	if n == 0 {
		return ErrReplay
	}
	// The ledger remembers too: a statement kept as an entry's evidence
	// was used, whatever seen_signatures says.
	used, err := inLedger(ctx, tx, digest, at)
	if err != nil {
		return err
	}
	if used {
		return fmt.Errorf("%w: it is the evidence of a ledger entry", ErrReplay)
	}
	return nil
}

// MarkSeen records the accepted message's signatures, the signer's
// (Seen) and every other that verified (SeenAlso): see the function
// MarkSeen. Every caller that acts on a mail calls it.
func (a *Accepted) MarkSeen(ctx context.Context, tx *sql.Tx) error {
	for _, id := range append([]string{a.Seen}, a.SeenAlso...) {
		if err := MarkSeen(ctx, tx, id, a.SignedAt); err != nil {
			return err
		}
	}
	return nil
}

// Prune deletes the entries recorded with a time before before, and
// returns how many. It first records before as the time forgotten
// (ForgottenBefore; it only moves forward), in the same transaction, so
// that no signature dated before it is taken again, whatever the window
// of a later run: a window made longer after a prune cannot replay what
// the prune forgot. The pipeline passes now minus the longer of the
// window and SeenRetention, minus the skew.
func Prune(ctx context.Context, db *sql.DB, before time.Time) (int64, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("inbound: prune seen signatures: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO seen_horizon(id, forgotten_before) VALUES (1, ?)
		 ON CONFLICT(id) DO UPDATE SET forgotten_before = max(forgotten_before, excluded.forgotten_before)`,
		before.Unix()); err != nil {
		return 0, fmt.Errorf("inbound: prune seen signatures: %w", err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM seen_signatures WHERE seen < ?`, before.Unix())
	if err != nil {
		return 0, fmt.Errorf("inbound: prune seen signatures: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("inbound: prune seen signatures: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("inbound: prune seen signatures: %w", err)
	}
	return n, nil
}

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

// MarkSeen records digest. at should be the signature's time
// (Accepted.SignedAt): Prune drops an entry once it is older than the
// window, when freshness alone refuses the signature. It returns ErrReplay
// if digest is already recorded. Call it inside the transaction that
// executes the commands, so that the check and the effect commit together.
func MarkSeen(ctx context.Context, tx *sql.Tx, digest string, at time.Time) error {
	if digest == "" {
		return errors.New("inbound: MarkSeen: empty digest")
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
	return nil
}

// MarkSeen records the accepted message's signature (see the function
// MarkSeen).
func (a *Accepted) MarkSeen(ctx context.Context, tx *sql.Tx) error {
	return MarkSeen(ctx, tx, a.Seen, a.SignedAt)
}

// Prune deletes the entries recorded with a time before before, and
// returns how many. Pass now minus the window: older signatures are
// refused as stale anyway.
func Prune(ctx context.Context, db *sql.DB, before time.Time) (int64, error) {
	res, err := db.ExecContext(ctx, `DELETE FROM seen_signatures WHERE seen < ?`, before.Unix())
	if err != nil {
		return 0, fmt.Errorf("inbound: prune seen signatures: %w", err)
	}
	return res.RowsAffected()
}

package liveness

import (
	"context"
	"fmt"

	"github.com/ccdir/ccdir/directory"
)

// Erase deletes, in t (the transaction of the erasure,
// directory.Tx.Erase), the erased person's reachability pings, key-expiry
// reminders and pending changes (waiting or decided: a change of the
// person, or one that would have given another contact the person's
// address or key). The record of decisions holds ids and states only.
// The new address and key of the person's pending changes (which the
// ledger never had) are added to er first, so that the owners erasing
// after it (the outbox: the notices to the new address) find them. It
// returns how many rows it deleted.
func Erase(ctx context.Context, t *directory.Tx, er *directory.Erased) (int64, error) {
	tx := t.SQL()
	var n int64
	for _, id := range er.IDs {
		rows, err := tx.QueryContext(ctx, `SELECT coalesce(new_email, ''), coalesce(new_fingerprint, '') FROM pending_changes WHERE contact_id = ?`, id)
		if err != nil {
			return n, fmt.Errorf("liveness: erase: %w", err)
		}
		for rows.Next() {
			var email, fpr string
			if err := rows.Scan(&email, &fpr); err != nil {
				rows.Close()
				return n, err
			}
			if email != "" {
				er.AddEmail(email)
			}
			if fpr != "" {
				er.AddFingerprint(fpr)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return n, err
		}
	}
	del := func(query string, args ...any) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("liveness: erase: %w", err)
		}
		k, err := res.RowsAffected()
		n += k
		return err
	}
	for _, id := range er.IDs {
		if err := del(`DELETE FROM pending_changes WHERE contact_id = ?`, id); err != nil {
			return n, err
		}
	}
	k, err := er.Delete(t, []string{
		`DELETE FROM pings WHERE lower(email) = lower(?1)`,
		`DELETE FROM key_reminders WHERE lower(email) = lower(?1)`,
		`DELETE FROM pending_changes WHERE lower(email) = lower(?1) OR lower(new_email) = lower(?1)`,
	}, []string{
		`DELETE FROM pings WHERE upper(fingerprint) = upper(?1)`,
		`DELETE FROM key_reminders WHERE upper(fingerprint) = upper(?1)`,
		`DELETE FROM pending_changes WHERE upper(fingerprint) = upper(?1) OR upper(new_fingerprint) = upper(?1)`,
	})
	n += k
	if err != nil {
		return n, fmt.Errorf("liveness: erase: %w", err)
	}
	return n, nil
}

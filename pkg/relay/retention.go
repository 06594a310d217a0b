package relay

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/ccdir/ccdir/pkg/outbox"
)

// DefaultRetention is how long the list keeps an alert's metadata
// (list.retention): who posted it, under which label, when, to whom it
// went and who acknowledged it, and its archive if Config.Archive kept
// one. A year covers a community's yearly review of its incidents.
const DefaultRetention = 365 * 24 * time.Hour

// pruneAlertBatch is how many alerts Prune reads in one transaction.
const pruneAlertBatch = 200

// Prune deletes the alerts recorded before before, with their recipients
// (and archive), and returns how many it deleted. An alert whose copies
// the outbox still holds to deliver (queued or deferred) is kept until
// they are delivered or have failed: what became of them is still to be
// told. Past its retention an alert is gone for ACK (a late one is
// answered as for an unknown alert) and ACKS, as for ccdir alerts. It
// works in batches of alerts, each its own transaction.
func Prune(ctx context.Context, db *sql.DB, before time.Time) (int64, error) {
	var total int64
	after := "" // alerts are read in id order, from after on
	for {
		n, last, err := pruneBatch(ctx, db, before, after)
		total += n
		if err != nil || last == "" {
			return total, err
		}
		after = last
	}
}

// pruneBatch prunes up to pruneAlertBatch alerts recorded before before
// with ids after after, and returns how many it deleted and the last id
// it read ("" when there were none).
func pruneBatch(ctx context.Context, db *sql.DB, before time.Time, after string) (int64, string, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, "", fmt.Errorf("relay: prune: %w", err)
	}
	defer tx.Rollback()
	ok, err := tableExists(ctx, tx)
	if err != nil || !ok {
		return 0, "", err
	}
	rows, err := tx.QueryContext(ctx, `SELECT id FROM alerts WHERE created < ? AND id > ? ORDER BY id LIMIT ?`, before.UnixMilli(), after, pruneAlertBatch)
	if err != nil {
		return 0, "", fmt.Errorf("relay: prune: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, "", fmt.Errorf("relay: prune: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, "", fmt.Errorf("relay: prune: %w", err)
	}
	if len(ids) == 0 {
		return 0, "", nil
	}
	var n int64
	for _, id := range ids {
		waiting, err := copiesWaiting(ctx, tx, id)
		if err != nil {
			return 0, "", err
		}
		if waiting {
			continue
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM alert_recipients WHERE alert_id = ?`, id); err != nil {
			return 0, "", fmt.Errorf("relay: prune alert %s: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM alerts WHERE id = ?`, id); err != nil {
			return 0, "", fmt.Errorf("relay: prune alert %s: %w", id, err)
		}
		n++
	}
	if err := tx.Commit(); err != nil {
		return 0, "", fmt.Errorf("relay: prune: %w", err)
	}
	return n, ids[len(ids)-1], nil
}

// copiesWaiting reports whether a copy of alert id that was queued is
// still to be delivered, by what the outbox says of it (a copy the
// outbox does not have any more is not waiting).
func copiesWaiting(ctx context.Context, tx *sql.Tx, id string) (bool, error) {
	statuses, err := outbox.Statuses(ctx, tx, Kind, id)
	if err != nil {
		return false, fmt.Errorf("relay: prune alert %s: %w", id, err)
	}
	for _, st := range statuses {
		if st == outbox.Queued || st == outbox.Deferred {
			return true, nil
		}
	}
	return false, nil
}

package receive

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// DefaultInboundRetention is how long the inbound log keeps a row: every
// message to the directory's public addresses leaves one, with its
// envelope sender, so the log must not grow for ever. 90 days cover
// weekly and monthly reports (which read only since the last one) and
// the questions of a quarter.
const DefaultInboundRetention = 90 * 24 * time.Hour

// pruneBatch is how many rows PruneInboundLog deletes in one statement,
// so that a first pruning of a long log does not hold the write lock for
// long.
const pruneBatch = 5000

// PruneInboundLog deletes the rows of the inbound log of db written
// before before, and returns how many it deleted. It deletes in batches,
// each its own transaction: stopped half way, it has deleted only rows
// it was asked to, and the next call finishes.
func PruneInboundLog(ctx context.Context, db *sql.DB, before time.Time) (int64, error) {
	var total int64
	for {
		res, err := db.ExecContext(ctx, `DELETE FROM inbound_log WHERE id IN
			(SELECT id FROM inbound_log WHERE at < ? ORDER BY at LIMIT ?)`, before.UnixMilli(), pruneBatch)
		if err != nil {
			return total, fmt.Errorf("inbound log: prune: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("inbound log: prune: %w", err)
		}
		total += n
		if n < pruneBatch {
			return total, nil
		}
	}
}

package outbox

import (
	"context"
	"fmt"
	"time"
)

// DefaultBounceRetention is how long a bounce is kept once it no longer
// counts (bounces.retention): a bounced message holds its recipient and
// the remote server's diagnostic, personal data that is no use once a
// later message to the address was delivered. 180 days keep two
// quarters of them for the operator's questions.
const DefaultBounceRetention = 180 * 24 * time.Hour

// pruneBatch is how many rows PruneBounces deletes in one statement, so
// that a first pruning of a long outbox does not hold the write lock for
// long.
const pruneBatch = 5000

// PruneBounces deletes the bounced messages whose bounce arrived before
// before and that no longer count: a later message to the same address
// (by queue order, the address compared as BounceRuns compares it) was
// sent and did not bounce. A bounce of a run still going (what
// BounceRuns counts, and bounces.limit judges a contact by) is never
// deleted, however old, so pruning never makes an unreachable contact
// reachable. It returns how many it deleted; it deletes in batches, each
// its own statement: stopped half way, it has deleted only rows it was
// asked to.
func (o *Outbox) PruneBounces(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		res, err := o.db.ExecContext(ctx, `DELETE FROM outbox WHERE id IN
			(SELECT o.id FROM outbox o WHERE o.status = 'bounced' AND o.bounced_at < ?
				AND o.id < (SELECT max(s.id) FROM outbox s WHERE lower(s.rcpt) = lower(o.rcpt) AND s.status = 'sent')
				LIMIT ?)`, before.UnixMilli(), pruneBatch)
		if err != nil {
			return total, fmt.Errorf("outbox: prune bounces: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("outbox: prune bounces: %w", err)
		}
		total += n
		if n < pruneBatch {
			return total, nil
		}
	}
}

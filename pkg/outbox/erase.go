package outbox

import (
	"context"
	"fmt"

	"github.com/ccdir/ccdir/directory"
)

// Erase deletes, in t (the transaction of the erasure,
// directory.Tx.Erase), every message of the outbox to an address of the
// erased person, queued or sent (their failures and bounces with them:
// BounceRuns reads these rows), and the shared parts no message refers to
// any more. Queued mail to the person is dropped, not sent. It returns
// how many messages it deleted.
func Erase(ctx context.Context, t *directory.Tx, er *directory.Erased) (int64, error) {
	n, err := er.Delete(t, []string{`DELETE FROM outbox WHERE lower(rcpt) = lower(?1)`}, nil)
	if err != nil {
		return n, fmt.Errorf("outbox: erase: %w", err)
	}
	tx := t.SQL()
	if _, err := tx.ExecContext(ctx, `DELETE FROM outbox_blob
		WHERE NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.blob = outbox_blob.id)`); err != nil {
		return n, fmt.Errorf("outbox: erase: %w", err)
	}
	return n, nil
}

package digest

import (
	"context"
	"fmt"

	"github.com/ccdir/ccdir/directory"
)

// Erase deletes, in t (the transaction of the erasure,
// directory.Tx.Erase), the erased person from the recipients of every
// digest recorded; a digest being sent goes on to the others. It
// returns how many rows it deleted.
func Erase(ctx context.Context, t *directory.Tx, er *directory.Erased) (int64, error) {
	tx := t.SQL()
	var n int64
	for _, email := range er.Emails {
		res, err := tx.ExecContext(ctx, `DELETE FROM digest_recipients WHERE lower(email) = lower(?)`, email)
		if err != nil {
			return n, fmt.Errorf("digest: erase: %w", err)
		}
		k, err := res.RowsAffected()
		if err != nil {
			return n, err
		}
		n += k
	}
	for _, fpr := range er.Fingerprints {
		res, err := tx.ExecContext(ctx, `DELETE FROM digest_recipients WHERE upper(fingerprint) = upper(?)`, fpr)
		if err != nil {
			return n, fmt.Errorf("digest: erase: %w", err)
		}
		k, err := res.RowsAffected()
		if err != nil {
			return n, err
		}
		n += k
	}
	return n, nil
}

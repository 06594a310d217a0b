package receive

import (
	"context"
	"fmt"

	"github.com/ccdir/ccdir/directory"
)

// Erase deletes, in t (the transaction of the erasure,
// directory.Tx.Erase), the rows of the inbound log of mail from or to an
// address of the erased person, or signed by a key they had. It returns
// how many rows it deleted.
func Erase(ctx context.Context, t *directory.Tx, er *directory.Erased) (int64, error) {
	tx := t.SQL()
	var n int64
	del := func(query string, arg string) error {
		res, err := tx.ExecContext(ctx, query, arg)
		if err != nil {
			return fmt.Errorf("inbound log: erase: %w", err)
		}
		k, err := res.RowsAffected()
		n += k
		return err
	}
	for _, email := range er.Emails {
		if err := del(`DELETE FROM inbound_log WHERE lower(sender) = lower(?1) OR lower(recipient) = lower(?1)`, email); err != nil {
			return n, err
		}
	}
	for _, fpr := range er.Fingerprints {
		if err := del(`DELETE FROM inbound_log WHERE signer != '' AND upper(signer) = upper(?)`, fpr); err != nil {
			return n, err
		}
	}
	return n, nil
}

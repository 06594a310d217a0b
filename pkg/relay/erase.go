package relay

import (
	"context"
	"fmt"

	"github.com/ccdir/ccdir/directory"
)

// Erase deletes, in t (the transaction of the erasure,
// directory.Tx.Erase), the erased person from the list's records: the
// alerts they posted (with their recipients and any archived copy) and
// their rows as a recipient of the others'. It returns how many rows it
// deleted.
func Erase(ctx context.Context, t *directory.Tx, er *directory.Erased) (int64, error) {
	tx := t.SQL()
	var n int64
	del := func(query string, arg string) error {
		res, err := tx.ExecContext(ctx, query, arg)
		if err != nil {
			return fmt.Errorf("relay: erase: %w", err)
		}
		k, err := res.RowsAffected()
		n += k
		return err
	}
	authored := `SELECT id FROM alerts WHERE lower(author_email) = lower(?1) OR upper(author_fpr) = upper(?1)`
	for _, who := range append(append([]string(nil), er.Emails...), er.Fingerprints...) {
		for _, q := range []string{
			`DELETE FROM alert_recipients WHERE alert_id IN (` + authored + `)`,
			`DELETE FROM alerts WHERE id IN (` + authored + `)`,
			`DELETE FROM alert_recipients WHERE lower(email) = lower(?1)`,
		} {
			if err := del(q, who); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

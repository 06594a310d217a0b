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
	authored := `SELECT id FROM alerts WHERE lower(author_email) = lower(?1) OR upper(author_fpr) = upper(?1)`
	queries := []string{
		`DELETE FROM alert_recipients WHERE alert_id IN (` + authored + `)`,
		`DELETE FROM alerts WHERE id IN (` + authored + `)`,
		`DELETE FROM alert_recipients WHERE lower(email) = lower(?1)`,
	}
	n, err := er.Delete(t, queries, queries)
	if err != nil {
		return n, fmt.Errorf("relay: erase: %w", err)
	}
	return n, nil
}

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
	n, err := er.Delete(t,
		[]string{`DELETE FROM digest_recipients WHERE lower(email) = lower(?1)`},
		[]string{`DELETE FROM digest_recipients WHERE upper(fingerprint) = upper(?1)`})
	if err != nil {
		return n, fmt.Errorf("digest: erase: %w", err)
	}
	return n, nil
}

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
	n, err := er.Delete(t,
		[]string{`DELETE FROM inbound_log WHERE lower(sender) = lower(?1) OR lower(recipient) = lower(?1)`},
		[]string{`DELETE FROM inbound_log WHERE signer != '' AND upper(signer) = upper(?1)`})
	if err != nil {
		return n, fmt.Errorf("inbound log: erase: %w", err)
	}
	return n, nil
}

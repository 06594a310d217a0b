package digest

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ccdir/ccdir/directory"
)

// CheckAnnounced checks that every digest recorded in the store's digests
// table announced a head its ledger still has: a digest whose serial is
// beyond the ledger's end, or whose head is not the hash of the ledger's
// entry at that serial, told members of a history that has since been
// cut back or rewritten (rollback evidence). It is a *directory.VerifyError
// naming the first such digest. A database without the digests table
// (not migrated for digests) has nothing to check. It only reads, and
// reads the table's version 1 columns, so that verify needs no
// migration.
func CheckAnnounced(ctx context.Context, s *directory.Store) error {
	var n int
	if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'digests'`).Scan(&n); err != nil || n == 0 {
		return err
	}
	rows, err := s.DB().QueryContext(ctx, `SELECT id, serial, head FROM digests ORDER BY id`)
	if err != nil {
		return err
	}
	type announced struct {
		id   int64
		head directory.Head
	}
	var all []announced
	for rows.Next() {
		var a announced
		if err := rows.Scan(&a.id, &a.head.Serial, &a.head.Hash); err != nil {
			rows.Close()
			return err
		}
		all = append(all, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(all) == 0 {
		return nil
	}
	end, err := s.Head(ctx)
	if err != nil {
		return err
	}
	stop := errors.New("stop")
	for _, a := range all {
		bad := func(format string, args ...any) error {
			return &directory.VerifyError{Table: "digests", Row: fmt.Sprintf("id=%d", a.id),
				Reason: fmt.Sprintf("ROLLBACK: digest %d announced serial %d head %.16s… to the members, ", a.id, a.head.Serial, a.head.Hash) +
					fmt.Sprintf(format, args...)}
		}
		if a.head.Serial > end.Serial {
			return bad("but the ledger ends at serial %d: entries members were told of are gone", end.Serial)
		}
		var got string
		err := s.Log(ctx, a.head.Serial, func(e *directory.Entry) error {
			if e.Seq == a.head.Serial {
				got = e.Hash
			}
			return stop
		})
		if err != nil && !errors.Is(err, stop) {
			return err
		}
		if got == "" {
			return bad("but the ledger has no entry %d", a.head.Serial)
		}
		if !strings.EqualFold(got, a.head.Hash) {
			return bad("but the ledger's entry %d has hash %.16s…: the ledger was rewritten after it", a.head.Serial, got)
		}
	}
	return nil
}

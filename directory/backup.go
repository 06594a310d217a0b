package directory

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// Backup writes a consistent copy of the whole database (signed and
// operational tables alike) to dst, a new file made with mode 0600, and
// returns the head it holds.
//
// It takes the database's write lock first, as Update does (BEGIN
// IMMEDIATE): no other connection, in this process or another (serve,
// digest send, a mutation, a rekey's ledger entry), commits while it is
// held. Under it, under is called with the directory's identity and head
// as they are, for the caller to copy what must match them (the key
// files, the configuration); an error from under aborts the backup (dst
// is removed) and is returned as it is. Still under the lock the
// database is copied with VACUUM INTO through a reader: a snapshot of
// the last commit, rebuilt from its live rows (no free page carries a
// deleted byte), in rollback-journal mode. Then the lock is released.
// The lock is held for as long as under and the copy take: other
// writers wait for it up to their busy timeout (5 s).
//
// The store must be open for writing (ReadOnly false); it needs no
// Signer. dst must not exist; "" copies nothing (the lock is held for
// under only: a backup of the files without the database).
func (s *Store) Backup(ctx context.Context, dst string, under func(Info, Head) error) (Head, error) {
	if s.opts.ReadOnly {
		return Head{}, errors.New("backup: the directory is open read-only")
	}
	if dst != "" {
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return Head{}, fmt.Errorf("backup: %w", err)
		}
		f.Close()
	}
	ok := false
	defer func() {
		if !ok && dst != "" {
			for _, suffix := range []string{"", "-journal", "-wal", "-shm"} {
				os.Remove(dst + suffix)
			}
		}
	}()
	tx, err := s.w.BeginTx(ctx, nil) // BEGIN IMMEDIATE through the DSN: the write lock
	if err != nil {
		return Head{}, fmt.Errorf("backup: take the write lock: %w", err)
	}
	defer tx.Rollback()
	info, err := readInfo(ctx, tx)
	if err != nil {
		return Head{}, err
	}
	head, _, err := readHead(ctx, tx)
	if err != nil {
		return Head{}, err
	}
	if under != nil {
		if err := under(info, head); err != nil {
			return Head{}, err
		}
	}
	if dst == "" {
		ok = true
		return head, tx.Rollback()
	}
	conn, err := s.r.Conn(ctx)
	if err != nil {
		return Head{}, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `VACUUM INTO ?`, dst); err != nil {
		return Head{}, fmt.Errorf("backup: copy the database: %w", err)
	}
	// The copy must be what the lock held.
	c, err := Open(ctx, dst, Options{ReadOnly: true, Migrations: s.opts.Migrations})
	if err != nil {
		return Head{}, fmt.Errorf("backup: read the copy: %w", err)
	}
	got, _, err := readHead(ctx, c.r)
	c.Close()
	if err != nil {
		return Head{}, fmt.Errorf("backup: read the copy: %w", err)
	}
	if got != head {
		return Head{}, fmt.Errorf("backup: the copy is at %s, the directory at %s", got, head)
	}
	if err := tx.Rollback(); err != nil {
		return Head{}, err
	}
	ok = true
	return head, nil
}

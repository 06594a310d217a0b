package directory

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound reports a ccTLD or contact that is not in the directory.
	ErrNotFound = errors.New("not found")
	// ErrExists reports an addition of something the directory already has.
	ErrExists = errors.New("already exists")
	// ErrPolicy reports a change the directory's rules do not allow
	// (too many security contacts, a ccTLD that still has contacts, …).
	ErrPolicy = errors.New("not allowed")
	// ErrNotDirectory reports a database file that is not a ccdir directory.
	ErrNotDirectory = errors.New("not a ccdir directory database")
	// ErrHomeExists reports a database that Create would overwrite.
	ErrHomeExists = errors.New("directory database already exists")
	// ErrNewerSchema reports a database with a schema migration newer
	// than this ccdir knows: a newer ccdir made it.
	ErrNewerSchema = errors.New("schema newer than this ccdir")
	// ErrNotMigrated reports to Verify a database made before schema
	// versions were recorded, not migrated yet.
	ErrNotMigrated = errors.New("schema not migrated")
)

// Error is a refusal with the detail a user needs: what was refused and,
// where one helps, a hint at the command that would work.
type Error struct {
	Err  error  // one of the sentinel errors above
	Msg  string // what is wrong, lowercase, no final period
	Hint string // optional
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Err }

func refuse(sentinel error, hint, format string, args ...any) error {
	return &Error{Err: sentinel, Msg: fmt.Sprintf(format, args...), Hint: hint}
}

// LedgerError names the ledger entry an operation on the ledger failed at.
type LedgerError struct {
	Seq int64
	Err error
}

func (e *LedgerError) Error() string { return fmt.Sprintf("ledger entry %d: %v", e.Seq, e.Err) }
func (e *LedgerError) Unwrap() error { return e.Err }

package directory

import (
	"errors"
	"syscall"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// Temporary reports whether err is a failure of the storage that trying
// again later can cure: the database busy or locked by another process
// past the busy timeout, a full disk or quota, an I/O error, a file that
// cannot be opened or written now, memory or file descriptors exhausted.
// It is the one classification of such errors: ccdir process exits 75
// (EX_TEMPFAIL) for them so that the MTA keeps the mail and retries, and
// nothing that reports to a member turns one into a final answer.
func Temporary(err error) bool {
	if err == nil {
		return false
	}
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrBusy, sqlite3.ErrLocked, sqlite3.ErrFull, sqlite3.ErrIoErr,
			sqlite3.ErrCantOpen, sqlite3.ErrNomem, sqlite3.ErrReadonly, sqlite3.ErrProtocol:
			return true
		}
		if se.SystemErrno != 0 && temporaryErrno(se.SystemErrno) {
			return true
		}
	}
	var errno syscall.Errno
	return errors.As(err, &errno) && temporaryErrno(errno)
}

// temporaryErrno: the system errors a retry can cure.
func temporaryErrno(e syscall.Errno) bool {
	switch e {
	case syscall.ENOSPC, syscall.EDQUOT, syscall.EIO, syscall.EAGAIN, syscall.EINTR,
		syscall.ENOMEM, syscall.EMFILE, syscall.ENFILE, syscall.EBUSY:
		return true
	}
	return false
}

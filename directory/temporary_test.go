package directory

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestTemporary: a database locked by another connection past the busy
// timeout and a full database are temporary (a retry can cure them); a
// refusal, a foreign error and a missing database are not.
func TestTemporary(t *testing.T) {
	f := newFixture(t)
	f.s.Close()

	// Another connection holds the database exclusively.
	lock, err := sql.Open("sqlite3", "file:"+f.path+"?_locking_mode=EXCLUSIVE&_txlock=exclusive")
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	lock.SetMaxOpenConns(1)
	tx, err := lock.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	other, err := sql.Open("sqlite3", "file:"+f.path+"?_busy_timeout=10")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var n int
	err = other.QueryRow(`SELECT count(*) FROM ledger`).Scan(&n)
	if err == nil || !Temporary(fmt.Errorf("open: %w", err)) {
		t.Fatalf("read while locked: %v; Temporary = false", err)
	}

	// SQLITE_FULL: a database that may not grow.
	full, err := sql.Open("sqlite3", "file:"+filepath.Join(t.TempDir(), "full.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	full.SetMaxOpenConns(1)
	if _, err := full.Exec(`CREATE TABLE t (x); PRAGMA max_page_count = 3`); err != nil {
		t.Fatal(err)
	}
	var ferr error
	for i := 0; i < 100 && ferr == nil; i++ {
		_, ferr = full.Exec(`INSERT INTO t VALUES (?)`, strings.Repeat("x", 4000))
	}
	if ferr == nil || !Temporary(fmt.Errorf("queue: %w", ferr)) {
		t.Fatalf("a full database: %v; Temporary = false", ferr)
	}

	if !Temporary(&fs.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}) {
		t.Error("ENOSPC is not temporary")
	}
	for _, err := range []error{
		nil,
		errors.New("something"),
		refuse(ErrNotFound, "", "ccTLD xx is not a member"),
		&fs.PathError{Op: "open", Path: "x", Err: syscall.ENOENT},
	} {
		if Temporary(err) {
			t.Errorf("Temporary(%v) = true", err)
		}
	}
	_, err = Open(context.Background(), filepath.Join(t.TempDir(), "missing.db"), Options{})
	if err == nil || Temporary(err) {
		t.Errorf("a missing database: %v, Temporary = true", err)
	}
}

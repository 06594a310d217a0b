package directory

import (
	"database/sql"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestPrivateCopyInMemory: the private copy of a read-only home's
// database and WAL (what verify reads when it may not write beside them)
// leaves nothing in TMPDIR while the Store is open, so a kill -9 leaks no
// copy of the contacts; it holds the newest state, the WAL's commits too.
func TestPrivateCopyInMemory(t *testing.T) {
	f := newFixture(t)
	f.populate()
	// A reader keeps the WAL from being checkpointed while f.s commits.
	hold, err := sql.Open("sqlite3", "file:"+f.path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	tx, err := hold.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow(`SELECT count(*) FROM members`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	f.update(func(tx *Tx) error { _, err := tx.AddMember(Member{TLD: "nl", Org: "SIDN"}); return err })
	want, err := f.verify()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	opts := f.opts()
	opts.ReadOnly = true
	s, err := openPrivateCopy(f.path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("while the private copy is open, TMPDIR holds %v", left)
	}
	if err := s.check(f.ctx); err != nil {
		t.Fatal(err)
	}
	got, err := s.Verify(f.ctx, f.signer.Fingerprint(), f.signer.verify)
	if err != nil || got != want {
		t.Errorf("private copy verifies as %v, %v; want %v", got, err, want)
	}
	if s.Path() != f.path {
		t.Errorf("Path() = %s, want %s", s.Path(), f.path)
	}
	tx.Rollback()
}

// TestOpenRefusesFIFOBeside: a named pipe as the WAL (or index) file of
// a database is refused at once; opening it would wait for a writer
// forever.
func TestOpenRefusesFIFOBeside(t *testing.T) {
	for _, suffix := range []string{"-wal", "-shm"} {
		t.Run(suffix, func(t *testing.T) {
			f := newFixture(t)
			f.s.Close()
			os.Remove(f.path + suffix)
			if err := syscall.Mkfifo(f.path+suffix, 0o600); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				opts := f.opts()
				opts.ReadOnly = true
				s, err := Open(f.ctx, f.path, opts)
				if err == nil {
					s.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil {
					t.Fatalf("Open with a FIFO as %s succeeded", filepath.Base(f.path+suffix))
				}
				t.Log(err)
			case <-time.After(10 * time.Second):
				t.Fatalf("Open with a FIFO as %s hangs", suffix)
			}
		})
	}
}

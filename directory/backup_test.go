package directory

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestBackupHoldsTheWriteLock: while under runs, another store's Update
// waits; the copy is at the head under saw, and verifies there.
func TestBackupHoldsTheWriteLock(t *testing.T) {
	f := newFixture(t)
	f.populate()
	before, err := f.s.Head(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	other, err := Open(f.ctx, f.path, f.opts())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	dst := filepath.Join(t.TempDir(), "copy.db")
	done := make(chan error, 1)
	head, err := f.s.Backup(f.ctx, dst, func(info Info, h Head) error {
		if h != before || info.KeyFingerprint != f.signer.Fingerprint() {
			t.Errorf("under got %v %s, want %v", h, info.KeyFingerprint, before)
		}
		go func() {
			_, err := other.Update(f.ctx, Operator, func(tx *Tx) error {
				_, err := tx.AddMember(Member{TLD: "de", Org: "DENIC"})
				return err
			})
			done <- err
		}()
		select {
		case err := <-done:
			t.Errorf("an Update committed while the backup held the lock (err %v)", err)
		case <-time.After(300 * time.Millisecond):
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if head != before {
		t.Fatalf("backup at %v, want %v", head, before)
	}
	if err := <-done; err != nil {
		t.Fatalf("the Update after the backup: %v", err)
	}
	st, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("copy mode %04o, want 0600", st.Mode().Perm())
	}
	c, err := Open(f.ctx, dst, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := c.Verify(f.ctx, f.signer.Fingerprint(), f.signer.verify)
	if err != nil {
		t.Fatal(err)
	}
	if got != before {
		t.Fatalf("copy verifies at %v, want %v (without the later member)", got, before)
	}
}

// TestBackupUnderErrorLeavesNothing: an error from under is returned and
// no file is left at dst.
func TestBackupUnderErrorLeavesNothing(t *testing.T) {
	f := newFixture(t)
	dst := filepath.Join(t.TempDir(), "copy.db")
	want := os.ErrPermission
	if _, err := f.s.Backup(f.ctx, dst, func(Info, Head) error { return want }); err != want {
		t.Fatalf("got %v, want %v", err, want)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Fatalf("dst left behind: %v", err)
	}
	if err := os.WriteFile(dst, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Backup(f.ctx, dst, nil); err == nil {
		t.Fatal("backup over an existing file")
	}
}

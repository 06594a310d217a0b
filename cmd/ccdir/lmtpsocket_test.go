package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestLMTPSocketCreatedPrivate: the LMTP unix socket is created with mode
// 0660 whatever the umask (here 000), not made with the umask and
// chmodded after, which left it connectable by anyone for a moment;
// listenUnix sets no mode after the socket exists. listenLMTP uses it.
func TestLMTPSocketCreatedPrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "lmtp.sock")
	l, err := listenUnix(path, 0o660)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != 0o660 {
		t.Errorf("socket created with mode %#o, want 0660", got)
	}
	if now := syscall.Umask(0); now != 0 {
		t.Errorf("umask left at %#o", now)
	}
	l2, err := listenLMTP("unix:" + filepath.Join(filepath.Dir(path), "b.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if st, err := os.Lstat(filepath.Join(filepath.Dir(path), "b.sock")); err != nil || st.Mode().Perm() != 0o660 {
		t.Errorf("listenLMTP socket: %v, %v", st, err)
	}
}

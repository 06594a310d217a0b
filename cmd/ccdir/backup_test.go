package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBackupWaitsForRekey: while a rekey's new key waits in keys/ (a
// rekey between its ledger entry and its key files, or one interrupted),
// backup waits, then refuses with the hint, writing nothing; once the key
// files are the ledger's again it backs up.
func TestBackupWaitsForRekey(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	ccdir := func(args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"--home", home}, args...), strings.NewReader(""), &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}
	if code, out := ccdir("init", "--name", "T", "--address", "ccdir@tldops.example", "--no-passphrase"); code != 0 {
		t.Fatalf("init: %d %s", code, out)
	}
	old := backupWait
	backupWait = 500 * time.Millisecond
	t.Cleanup(func() { backupWait = old })

	next := filepath.Join(home, keysDir, nextSecretName)
	sec, err := os.ReadFile(filepath.Join(home, keysDir, secretName))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(next, sec, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "b.ccdir")
	start := time.Now()
	code, msg := ccdir("backup", "-o", out)
	if code != exitError || !strings.Contains(msg, "a rekey is installing a new key") || !strings.Contains(msg, "hint: a ccdir rekey is under way, or was interrupted") {
		t.Fatalf("backup during a rekey: exit %d, %s", code, msg)
	}
	if d := time.Since(start); d < backupWait {
		t.Fatalf("backup gave up after %v, before backupWait", d)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("a file at %s: %v", out, err)
	}
	// The rekey finishes while backup waits.
	go func() {
		time.Sleep(200 * time.Millisecond)
		os.Remove(next)
	}()
	if code, msg := ccdir("backup", "-o", out); code != 0 || !strings.Contains(msg, "wrote "+out) {
		t.Fatalf("backup after the rekey finished: exit %d, %s", code, msg)
	}
	// Files left by an interrupted write (temporary names) stay out.
	if err := os.WriteFile(filepath.Join(home, keysDir, ".directory.sec.asc.tmp-1"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	out2 := filepath.Join(dir, "b2.ccdir")
	if code, msg := ccdir("backup", "-o", out2); code != 0 {
		t.Fatalf("backup: %d %s", code, msg)
	}
	r := filepath.Join(dir, "restored")
	var rerr bytes.Buffer
	if code := run(context.Background(), []string{"--home", r, "restore", out2}, strings.NewReader(""), &bytes.Buffer{}, &rerr); code != 0 {
		t.Fatalf("restore: %d %s", code, rerr.String())
	}
	ents, _ := os.ReadDir(filepath.Join(r, keysDir))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || e.Name() == nextSecretName {
			t.Errorf("restored keys/%s", e.Name())
		}
	}
}

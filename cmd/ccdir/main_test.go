package main

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"ccdir": func() {
			// CCDIR_TESTONLY_NOW fixes the clock of the test binary only;
			// the real ccdir never reads it.
			if v := os.Getenv("CCDIR_TESTONLY_NOW"); v != "" {
				t, err := time.Parse(time.RFC3339, v)
				if err != nil {
					fmt.Fprintln(os.Stderr, "bad CCDIR_TESTONLY_NOW:", err)
					os.Exit(2)
				}
				testOnlyNow = func() time.Time { return t }
			}
			main()
		},
	})
}

// TestScripts runs the CLI tests in testdata/script, one file per area
// and behaviour. They run the real ccdir (this test binary) and the real
// gpg and sq.
func TestScripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/script/*.txtar")
	if len(files) == 0 {
		t.Fatal("no scripts in testdata/script")
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(e *testscript.Env) error {
			home := filepath.Join(e.WorkDir, "user")
			gnupg := filepath.Join(e.WorkDir, ".gnupg")
			for _, d := range []string{home, gnupg} {
				if err := os.MkdirAll(d, 0o700); err != nil {
					return err
				}
			}
			e.Setenv("HOME", home)
			e.Setenv("XDG_DATA_HOME", filepath.Join(home, ".local", "share"))
			e.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
			e.Setenv("GNUPGHOME", gnupg)
			e.Setenv("CCDIR_HOME", filepath.Join(e.WorkDir, "dir"))
			e.Defer(func() { killAgent(gnupg) })
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"sqlexec":  cmdSQLExec,
			"perm":     cmdPerm,
			"status":   cmdStatus,
			"gpgfpr":   cmdGPGFpr,
			"grepenv":  cmdGrepEnv,
			"nonempty": cmdNonEmpty,
		},
	})
}

// killAgent stops the gpg-agent a script may have started.
func killAgent(gnupg string) {
	if _, err := os.Stat(filepath.Join(gnupg, "S.gpg-agent")); err == nil {
		cmd := exec.Command("gpgconf", "--homedir", gnupg, "--kill", "all")
		cmd.Run()
	}
}

// sqlexec DB STATEMENT changes a database behind ccdir's back and fails
// if the statement changed no row.
func cmdSQLExec(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: sqlexec DB STATEMENT")
	}
	db, err := sql.Open("sqlite3", "file:"+ts.MkAbs(args[0])+"?_foreign_keys=off")
	if err != nil {
		ts.Fatalf("%v", err)
	}
	defer db.Close()
	res, err := db.Exec(args[1])
	if err == nil {
		var n int64
		n, err = res.RowsAffected()
		if err == nil && n == 0 {
			err = fmt.Errorf("changed no row")
		}
	}
	if neg != (err != nil) {
		ts.Fatalf("sqlexec %q: %v", args[1], err)
	}
}

// perm FILE MODE checks a file's permission bits, e.g. perm dir/keys/directory.sec.asc 0600.
func cmdPerm(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: perm FILE MODE")
	}
	want, err := strconv.ParseUint(args[1], 8, 32)
	if err != nil {
		ts.Fatalf("bad mode %q", args[1])
	}
	st, err := os.Stat(ts.MkAbs(args[0]))
	if err != nil {
		ts.Fatalf("%v", err)
	}
	got := st.Mode().Perm()
	if (got == os.FileMode(want)) == neg {
		ts.Fatalf("%s has mode %#o, want %s%#o", args[0], got, map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// status N CMD ARGS... runs a command like exec and checks its exit code,
// e.g. status 3 ccdir verify.
func cmdStatus(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: status N COMMAND [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("bad exit code %q", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("%v", err)
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}

// gpgfpr VAR USERID sets $VAR to the fingerprint of the one key in the
// script's GnuPG keyring that USERID names, so a script can use it in
// later commands (gpg --quick-add-key $VAR ..., openpgp-revocs.d/$VAR.rev).
func cmdGPGFpr(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: gpgfpr VAR USERID")
	}
	cmd := exec.Command("gpg", "--batch", "--with-colons", "--list-keys", args[1])
	cmd.Env = append(os.Environ(), "GNUPGHOME="+ts.Getenv("GNUPGHOME"))
	out, err := cmd.Output()
	if err != nil {
		ts.Fatalf("gpg --list-keys %s: %v", args[1], err)
	}
	// The first fpr record after each pub record is the primary key's.
	var fprs []string
	pub := false
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, ":")
		switch {
		case f[0] == "pub":
			pub = true
		case f[0] == "fpr" && pub && len(f) > 9:
			fprs = append(fprs, f[9])
			pub = false
		}
	}
	if len(fprs) != 1 {
		ts.Fatalf("%q names %d keys, want 1", args[1], len(fprs))
	}
	ts.Setenv(args[0], fprs[0])
}

// grepenv VAR REGEXP FILE sets $VAR to the first submatch of REGEXP
// (multi-line mode) in FILE, which may be stdout or stderr, and fails if
// REGEXP does not match; e.g. grepenv HEAD '^ok serial \d+ head (\w+)$' stdout.
func cmdGrepEnv(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: grepenv VAR REGEXP FILE")
	}
	re, err := regexp.Compile("(?m)" + args[1])
	if err != nil {
		ts.Fatalf("%v", err)
	}
	if re.NumSubexp() < 1 {
		ts.Fatalf("grepenv: %q has no group", args[1])
	}
	m := re.FindStringSubmatch(ts.ReadFile(args[2]))
	if m == nil {
		ts.Fatalf("no match for %q in %s", args[1], args[2])
	}
	ts.Setenv(args[0], m[1])
}

// nonempty FILE succeeds if FILE exists and holds at least one byte;
// ! nonempty FILE succeeds if it is missing or empty (e.g. no pending WAL).
func cmdNonEmpty(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: nonempty FILE")
	}
	st, err := os.Stat(ts.MkAbs(args[0]))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		ts.Fatalf("%v", err)
	}
	full := err == nil && st.Size() > 0
	if full == neg {
		ts.Fatalf("%s: nonempty is %v", args[0], full)
	}
}

package main

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
			"sqlexec": cmdSQLExec,
			"perm":    cmdPerm,
			"status":  cmdStatus,
		},
	})
}

// killAgent stops the gpg-agent a script may have started.
func killAgent(gnupg string) {
	if _, err := os.Stat(filepath.Join(gnupg, "S.gpg-agent")); err == nil {
		cmd := execCommand("gpgconf", "--homedir", gnupg, "--kill", "all")
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

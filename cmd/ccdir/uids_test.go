package main

import (
	"database/sql"
	"os"
	"path/filepath"

	"github.com/rogpeppe/go-internal/testscript"
)

// releasedhome DIR makes DIR the home the released ccdir made
// (testdata/released): a directory key with a user ID for the command
// address only, although the directory has a list.
func cmdReleasedHome(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: releasedhome DIR")
	}
	home := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(filepath.Join(home, keysDir), 0o700))
	src, err := filepath.Abs(filepath.Join("testdata", "released")) // the test process runs in the package folder
	ts.Check(err)
	for _, name := range []string{configName, filepath.Join(keysDir, publicName), filepath.Join(keysDir, secretName)} {
		b, err := os.ReadFile(filepath.Join(src, name))
		ts.Check(err)
		ts.Check(os.WriteFile(filepath.Join(home, name), b, 0o600))
	}
	dump, err := os.ReadFile(filepath.Join(src, "directory.sql"))
	ts.Check(err)
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(home, dbName)+"?_foreign_keys=off")
	ts.Check(err)
	defer db.Close()
	_, err = db.Exec(string(dump))
	ts.Check(err)
}

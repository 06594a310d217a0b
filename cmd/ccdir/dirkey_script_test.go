package main

import (
	"context"
	"os"
	"path/filepath"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
)

// smugglekey HOME KEYFILE is an operator who holds the directory key
// (without passphrase) and writes, signed by it, a directory.key ledger
// entry labelled with the directory's fingerprint whose public key is
// KEYFILE: what a ccdir without the key checks (Options.Fingerprints)
// would write. Only the key itself can tell.
func cmdSmuggleKey(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: smugglekey HOME KEYFILE")
	}
	home := ts.MkAbs(args[0])
	k, err := os.ReadFile(ts.MkAbs(args[1]))
	ts.Check(err)
	sec, err := keys.ReadSecretFile(filepath.Join(home, keysDir, secretName), nil)
	ts.Check(err)
	ctx := context.Background()
	s, err := directory.Open(ctx, filepath.Join(home, dbName), directory.Options{Signer: sec, Migrations: migrations()})
	ts.Check(err)
	defer s.Close()
	_, err = s.Update(ctx, directory.Actor{Name: "operator:mallory"}, func(tx *directory.Tx) error {
		_, err := tx.SetDirectoryKey(string(k))
		return err
	})
	ts.Check(err)
}

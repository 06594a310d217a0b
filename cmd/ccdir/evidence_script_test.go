package main

import (
	"context"
	"os"
	"path/filepath"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
)

// launder HOME EMAIL NAME EVIDENCE is an operator who holds the directory
// key (without passphrase) and writes, signed by it, a ledger entry in the
// name of EMAIL's registered key that renames the contact to NAME, with
// the file EVIDENCE as its evidence: what a ccdir that laundered a change
// would write. Only the member's signature in the evidence can tell.
func cmdLaunder(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 4 {
		ts.Fatalf("usage: launder HOME EMAIL NAME EVIDENCE")
	}
	home := ts.MkAbs(args[0])
	ev, err := os.ReadFile(ts.MkAbs(args[3]))
	ts.Check(err)
	sec, err := keys.ReadSecretFile(filepath.Join(home, keysDir, secretName), nil)
	ts.Check(err)
	ctx := context.Background()
	s, err := directory.Open(ctx, filepath.Join(home, dbName), directory.Options{Signer: sec, Migrations: migrations()})
	ts.Check(err)
	defer s.Close()
	c, err := s.Contact(ctx, args[1])
	ts.Check(err)
	if c.Key == nil {
		ts.Fatalf("%s has no key", args[1])
	}
	_, err = s.Update(ctx, directory.Actor{Name: "member:" + c.Key.Fingerprint, Evidence: ev}, func(tx *directory.Tx) error {
		_, err := tx.UpdateContact(args[1], func(c *directory.Contact) error { c.Name = args[2]; return nil })
		return err
	})
	ts.Check(err)
}

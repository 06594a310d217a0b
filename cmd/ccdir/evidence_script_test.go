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
	launderEntry(ts, args[0], "", args[1], args[2], args[3])
}

// launderas HOME ACTOR EMAIL NAME EVIDENCE is launder with the actor
// given: "daily" or "operator:…" for an entry that claims to apply a
// change which waited (its EVIDENCE quoting the member's mail).
func cmdLaunderAs(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 5 {
		ts.Fatalf("usage: launderas HOME ACTOR EMAIL NAME EVIDENCE")
	}
	launderEntry(ts, args[0], args[1], args[2], args[3], args[4])
}

// launderEntry writes the entry of launder and launderas; actor ""
// is the member:FPR of email's registered key.
func launderEntry(ts *testscript.TestScript, home, actor, email, name, evidence string) {
	home = ts.MkAbs(home)
	ev, err := os.ReadFile(ts.MkAbs(evidence))
	ts.Check(err)
	sec, err := keys.ReadSecretFile(filepath.Join(home, keysDir, secretName), nil)
	ts.Check(err)
	ctx := context.Background()
	s, err := directory.Open(ctx, filepath.Join(home, dbName), directory.Options{Signer: sec, Migrations: migrations()})
	ts.Check(err)
	defer s.Close()
	if actor == "" {
		c, err := s.Contact(ctx, email)
		ts.Check(err)
		if c.Key == nil {
			ts.Fatalf("%s has no key", email)
		}
		actor = "member:" + c.Key.Fingerprint
	}
	_, err = s.Update(ctx, directory.Actor{Name: actor, Evidence: ev}, func(tx *directory.Tx) error {
		_, err := tx.UpdateContact(email, func(c *directory.Contact) error { c.Name = name; return nil })
		return err
	})
	ts.Check(err)
}

package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/directory"
)

func newVerifyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Check the ledger's hashes and signatures and that the directory is exactly its replay",
		Long: `Replay the whole ledger into a fresh in-memory database, compare it with the
state tables row by row, and check the hash chain and every entry's signature
by the directory key (keys/directory.pub.asc). Prints "ok serial N head HASH",
or names the first entry or row that does not match.

EXIT STATUS
  0 ok, 1 error (the check could not run), 3 the directory does not match its ledger`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Open the database first: a missing home, or a database
			// that is damaged or not ours, says more than a missing key.
			s, err := g.openRead(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			pub, err := g.publicKey()
			if err != nil {
				return err
			}
			v, err := pub.NewVerifier(g.now())
			if err != nil {
				return fmt.Errorf("directory key %s: %w", g.path(keysDir, publicName), err)
			}
			head, err := s.Verify(cmd.Context(), pub.Fingerprint, v.Verify)
			if directory.IsVerifyError(err) && g.json {
				if jerr := g.printJSON(map[string]any{"ok": false, "problem": err.Error()}); jerr != nil {
					return jerr
				}
				return err
			}
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(map[string]any{"ok": true, "serial": head.Serial, "head": head.Hash})
			}
			g.printf("ok %s\n", head)
			return nil
		},
	}
}

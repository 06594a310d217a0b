package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/directory"
)

func newVerifyCmd(g *globals) *cobra.Command {
	var pin, wantHead string
	cmd := &cobra.Command{
		Use:   "verify [--key FINGERPRINT] [--head SERIAL:HASH]",
		Short: "Check the ledger's hashes and signatures and that the directory is exactly its replay",
		Long: `Replay the whole ledger into a fresh in-memory database, compare it with the
state tables row by row, and check the hash chain and every entry's signature
by the directory key (keys/directory.pub.asc, which must match the secret key
beside it). Prints "ok serial N head HASH" and the key it trusted, or names
the first entry or row that does not match.

Someone who can write the whole home can replace the key and the ledger
together. Pin what you know from outside: --key with the directory key's
fingerprint (as members see it in every digest), --head with a serial and
head hash published earlier (a digest, an export): that entry must still be
in the ledger, unchanged.

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
			var mismatch *keyMismatchError
			if errors.As(err, &mismatch) {
				return &directory.VerifyError{Reason: err.Error()}
			}
			if err != nil {
				return err
			}
			if pin != "" && !strings.EqualFold(strings.ReplaceAll(pin, " ", ""), pub.Fingerprint) {
				return &directory.VerifyError{Reason: fmt.Sprintf("the directory key is %s, not the pinned %s", pub.Fingerprint, pin)}
			}
			v, err := pub.NewVerifier(g.now())
			if err != nil {
				return fmt.Errorf("directory key %s: %w", g.path(keysDir, publicName), err)
			}
			head, err := s.Verify(cmd.Context(), pub.Fingerprint, v.Verify)
			if err == nil && wantHead != "" {
				err = checkHead(cmd.Context(), s, wantHead)
			}
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
				return g.printJSON(map[string]any{"ok": true, "serial": head.Serial, "head": head.Hash, "key": pub.Fingerprint})
			}
			g.printf("ok %s\n", head)
			g.printf("directory key %s\n", groupHex(pub.Fingerprint))
			return nil
		},
	}
	cmd.Flags().StringVar(&pin, "key", "", "the directory key's fingerprint, known from outside the home")
	cmd.Flags().StringVar(&wantHead, "head", "", "SERIAL:HASH of a head published earlier, which must be in the ledger")
	return cmd
}

// checkHead makes sure ledger entry SERIAL still has hash HASH.
func checkHead(ctx context.Context, s *directory.Store, want string) error {
	serialText, hash, ok := strings.Cut(want, ":")
	serial, err := strconv.ParseInt(serialText, 10, 64)
	if !ok || err != nil || serial < 1 || len(hash) != 64 {
		return usagef("--head wants SERIAL:HASH, e.g. 42:%s", strings.Repeat("0", 64))
	}
	var got string
	err = s.Log(ctx, serial, func(e *directory.Entry) error {
		got = e.Hash
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	switch {
	case got == "":
		return &directory.VerifyError{Seq: serial, Reason: "the published head is not in the ledger (it was cut back)"}
	case !strings.EqualFold(got, hash):
		return &directory.VerifyError{Seq: serial, Reason: fmt.Sprintf("hash %.16s… differs from the published %.16s…: the ledger was rewritten", got, hash)}
	}
	return nil
}

var errStop = errors.New("stop")

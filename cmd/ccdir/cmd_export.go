package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/pkg/export"
)

func newExportCmd(g *globals) *cobra.Command {
	var format, out string
	var sign bool
	cmd := &cobra.Command{
		Use:   "export [--format text|json|csv|vcard|keys] [--sign] [-o FILE]",
		Short: "Write the whole directory as text, JSON, CSV, vCard or a key bundle",
		Long: `Write the whole directory at its current head. JSON carries the serial and the
head hash. With -o the file is written atomically; --sign also writes FILE.asc,
an armored detached signature by the directory key that gpg --verify accepts
with the key printed by ccdir pubkey.

EXIT STATUS
  0 written, 1 error (no file is left half-written), 2 usage`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !validFormat(format) {
				return usagef("unknown format %q: want one of %s", format, strings.Join(export.Formats, ", "))
			}
			if sign && out == "" {
				return usagef("--sign needs -o FILE (the signature goes to FILE.asc)")
			}
			snap, err := g.snapshot(cmd.Context())
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			if err := export.Render(&buf, format, snap); err != nil {
				return err
			}
			if out == "" || out == "-" {
				_, err := g.stdout.Write(buf.Bytes())
				return err
			}
			var sig bytes.Buffer
			if sign {
				sec, err := g.secretKey()
				if err != nil {
					return err
				}
				if !strings.EqualFold(sec.Fingerprint(), snap.Info.KeyFingerprint) {
					return fmt.Errorf("the key in the home folder is not the directory's key")
				}
				if err := sec.ArmoredDetachSign(&sig, bytes.NewReader(buf.Bytes())); err != nil {
					return fmt.Errorf("sign: %w", err)
				}
			}
			// Write both files fully before renaming either into place.
			df, err := newAtomicFile(out, 0o644)
			if err != nil {
				return err
			}
			if _, err := df.Write(buf.Bytes()); err != nil {
				df.Abort()
				return err
			}
			if err := df.finish(); err != nil {
				return err
			}
			if sign {
				sf, err := newAtomicFile(out+".asc", 0o644)
				if err != nil {
					df.Abort()
					return err
				}
				if _, err := sf.Write(sig.Bytes()); err != nil {
					sf.Abort()
					df.Abort()
					return err
				}
				if err := sf.finish(); err != nil {
					df.Abort()
					return err
				}
				// The signature first: if the data cannot follow, the new
				// signature is removed, so no file is left beside a
				// signature that does not match it.
				if err := sf.rename(); err != nil {
					df.Abort()
					return err
				}
				if err := df.rename(); err != nil {
					os.Remove(out + ".asc")
					return err
				}
			} else if err := df.rename(); err != nil {
				return err
			}
			if g.json {
				res := map[string]any{"file": out, "format": format, "serial": snap.Head.Serial, "head": snap.Head.Hash}
				if sign {
					res["signature"] = out + ".asc"
				}
				return g.printJSON(res)
			}
			g.printf("wrote %s (%s, %s)\n", out, format, snap.Head)
			if sign {
				g.printf("wrote %s (signature by %s)\n", out+".asc", snap.Info.KeyFingerprint)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", export.FormatText, "text, json, csv, vcard or keys")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to FILE instead of stdout")
	cmd.Flags().BoolVar(&sign, "sign", false, "also write FILE.asc, a detached signature by the directory key")
	return cmd
}

func validFormat(f string) bool {
	for _, x := range export.Formats {
		if f == x {
			return true
		}
	}
	return false
}

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/export"
)

// maxImportFile caps the CSV file.
const maxImportFile = 10 << 20

type importOptions struct {
	keys string // the key bundle, matched to the contacts by email
}

func newImportCmd(g *globals) *cobra.Command {
	var o importOptions
	cmd := &cobra.Command{
		Use:   "import FILE.csv [--keys BUNDLE.asc]",
		Short: "Import ccTLDs and contacts from CSV, all or nothing",
		Long: `Import ccTLDs and contacts from a CSV file with the header
  ` + strings.Join(export.CSVHeader, ",") + `
(the format of ccdir export --format csv). Phones and languages are separated
by ";"; an emergency phone is written "emergency:+351...". 24x7 is yes or no.
A ccTLD that is not yet a member is added with the row's org. An email that
appears on several rows is one contact serving several ccTLDs.
--keys gives a bundle of public keys matched to the contacts by email.

One bad row rejects the whole file, naming its line: nothing is written.

EXIT STATUS
  0 imported, 1 refused (nothing changed), 2 usage`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImport(cmd.Context(), o, g, args[0])
		},
	}
	cmd.Flags().StringVar(&o.keys, "keys", "", "bundle of armored public keys, matched to contacts by email")
	return cmd
}

func runImport(ctx context.Context, o importOptions, g *globals, file string) error {
	data, err := readCapped(file, maxImportFile)
	if err != nil {
		return err
	}
	rows, err := export.ParseCSV(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if len(rows) == 0 {
		return fmt.Errorf("%s has no rows", file)
	}
	var bundle export.KeyBundle
	if o.keys != "" {
		b, err := readCapped(o.keys, maxBundleFile)
		if err != nil {
			return err
		}
		var dup *export.DuplicateKeyError
		bundle, err = export.ParseKeyBundle(b)
		switch {
		case errors.As(err, &dup):
			return fmt.Errorf("%s holds %w", o.keys, err)
		case err != nil:
			return fmt.Errorf("%s: %w", o.keys, err)
		}
	}
	now := g.now()
	var res export.ImportResult
	err = g.mutateUnannounced(ctx, func(tx *directory.Tx) (string, error) {
		r, err := export.Import(tx, rows, bundle, now)
		if err != nil {
			return "", keyHint(fmt.Errorf("%s %w", file, err))
		}
		res = r
		return fmt.Sprintf("imported %s, %s, %s from %s", plural(res.Members, "new ccTLD"), plural(res.Contacts, "contact"), plural(res.Keys, "key"), file), nil
	})
	if err == nil && o.keys != "" && res.Keys < res.Contacts {
		g.warnf("%d of %s have no key in %s", res.Contacts-res.Keys, plural(res.Contacts, "contact"), o.keys)
	}
	return err
}

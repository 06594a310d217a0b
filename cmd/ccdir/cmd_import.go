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
		Use:   "import FILE.csv|FILE.json [--keys BUNDLE.asc]",
		Short: "Import ccTLDs and contacts from CSV or a JSON export, all or nothing",
		Long: `Import ccTLDs and contacts from a CSV file with the header
  ` + strings.Join(export.CSVHeader, ",") + `
and optionally the columns ` + strings.Join(export.CSVExtra, ",") + `
(the format of ccdir export --format csv), or from a JSON export (ccdir
export --format json; a file that starts with "{" is read as one).
Phones and languages are separated by ";"; an emergency phone is written
"emergency:+351...". 24x7 is yes or no. A ccTLD that is not yet a member is
added with the row's org, status and country; a row with only those (no
contact columns) is a member without contacts. An email that appears on
several rows is one contact serving several ccTLDs.

--keys gives a bundle of public keys (ccdir export --format keys, gpg
--export --armor). A row whose key column (the JSON's key fingerprint)
names a key gets that key from the bundle, whatever its user IDs say (a
key taken with --any-uid, or kept across an email change); a row that
names none gets the one key with a user ID for its email, if any.

export --format json (or csv) with export --format keys, imported into a
new home with --keys, gives the same directory: every member (with its
status and country, with or without contacts), contact, role and key.

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
	data, err := readCapped(file, export.MaxJSONBytes)
	if err != nil {
		return err
	}
	var rows []export.CSVRow
	if t := bytes.TrimLeft(data, " \t\r\n\uFEFF"); len(t) > 0 && t[0] == '{' {
		e, err := export.ParseJSON(bytes.NewReader(data))
		if err != nil {
			return withHint(fmt.Errorf("%s: %w", file, err), "give a JSON file written by ccdir export --format json, or a CSV file")
		}
		rows = export.ExportRows(e)
	} else {
		if len(data) > maxImportFile {
			return fmt.Errorf("%s is larger than %d bytes", file, maxImportFile)
		}
		rows, err = export.ParseCSV(bytes.NewReader(data))
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
	}
	if len(rows) == 0 {
		return fmt.Errorf("%s has no rows", file)
	}
	var bundle *export.KeyBundle
	if o.keys != "" {
		b, err := readCapped(o.keys, maxBundleFile)
		if err != nil {
			return err
		}
		if bundle, err = export.ParseKeyBundle(b); err != nil {
			return fmt.Errorf("%s: %w", o.keys, err)
		}
	}
	now := g.now()
	var res export.ImportResult
	err = g.mutateUnannounced(ctx, func(tx *directory.Tx) (string, error) {
		r, err := export.Import(tx, rows, bundle, now)
		var dup *export.DuplicateKeyError
		switch {
		case errors.As(err, &dup):
			return "", withHint(fmt.Errorf("%s %w in %s", file, err, o.keys), "name the key of the contact by its fingerprint in the key column (ccdir export --format csv writes it), or keep one of the two keys in the bundle")
		case err != nil:
			return "", keyHint(fmt.Errorf("%s %w", file, err))
		}
		res = r
		return fmt.Sprintf("imported %s, %s, %s from %s", plural(res.Members, "new ccTLD"), plural(res.Contacts, "contact"), plural(res.Keys, "key"), file), nil
	})
	if err == nil && res.KeysNoUID > 0 {
		g.warnf("%s named by fingerprint in %s %s no user ID with the contact's email (taken as ccdir key import --any-uid does)", plural(res.KeysNoUID, "key"), file, map[bool]string{true: "has", false: "have"}[res.KeysNoUID == 1])
	}
	if err == nil && o.keys != "" && res.Keys < res.Contacts {
		g.warnf("%d of %s have no key in %s", res.Contacts-res.Keys, plural(res.Contacts, "contact"), o.keys)
	}
	return err
}

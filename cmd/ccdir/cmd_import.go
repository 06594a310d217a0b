package main

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/export"
)

// maxImportFile caps the CSV file.
const maxImportFile = 10 << 20

func newImportCmd(g *globals) *cobra.Command {
	var keyFile string
	cmd := &cobra.Command{
		Use:   "import FILE.csv [--keys BUNDLE.asc]",
		Short: "Import ccTLDs and contacts from CSV, all or nothing",
		Long: `Import ccTLDs and contacts from a CSV file with the header
  tld,org,name,email,phones,role,languages,timezone,24x7
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
			ctx := cmd.Context()
			data, err := readCapped(args[0], maxImportFile)
			if err != nil {
				return err
			}
			rows, err := export.ParseCSV(bytes.NewReader(data))
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if len(rows) == 0 {
				return fmt.Errorf("%s has no rows", args[0])
			}
			bundle := map[string]*keys.Public{}
			if keyFile != "" {
				b, err := readCapped(keyFile, maxBundleFile)
				if err != nil {
					return err
				}
				pubs, err := keys.ParsePublic(b)
				if err != nil {
					return fmt.Errorf("%s: %w", keyFile, err)
				}
				for _, p := range pubs {
					for _, e := range p.Emails {
						n, err := directory.NormalizeEmail(e)
						if err != nil {
							continue
						}
						if other, ok := bundle[n]; ok && other.Fingerprint != p.Fingerprint {
							return fmt.Errorf("%s holds two keys for %s: %s and %s", keyFile, n, other.Fingerprint, p.Fingerprint)
						}
						bundle[n] = p
					}
				}
			}
			now := g.now()
			var members, contacts, withKey int
			type firstRow struct {
				line int
				c    directory.Contact
			}
			seen := map[string]firstRow{}
			err = g.mutate(ctx, func(tx *directory.Tx) (string, error) {
				for _, r := range rows {
					lineErr := func(err error) error { return fmt.Errorf("%s line %d: %w", args[0], r.Line, err) }
					m, err := tx.Member(r.TLD)
					switch {
					case errors.Is(err, directory.ErrNotFound):
						if _, err := tx.AddMember(directory.Member{TLD: r.TLD, Org: r.Org}); err != nil {
							return "", lineErr(err)
						}
						members++
					case err != nil:
						return "", lineErr(err)
					case r.Org != "" && r.Org != m.Org:
						return "", lineErr(fmt.Errorf("org %q differs from %q, the registered org of %s", r.Org, m.Org, m.TLD))
					}
					c := directory.Contact{Email: r.Email, Name: r.Name, Phones: r.Phones,
						Roles:     []directory.Role{{TLD: r.TLD, Role: r.Role}},
						Languages: r.Languages, TimeZone: r.TimeZone, Always: r.Always}
					email, err := directory.NormalizeEmail(r.Email)
					if err != nil {
						return "", lineErr(err)
					}
					if first, ok := seen[email]; ok {
						// Another ccTLD for a contact of an earlier row,
						// which must say the same of the contact.
						if err := c.Normalize(); err != nil {
							return "", lineErr(err)
						}
						if col := differs(first.c, c); col != "" {
							return "", lineErr(fmt.Errorf("column %s for %s differs from line %d; a contact serving several ccTLDs must be the same on each row", col, email, first.line))
						}
						if _, err := tx.UpdateContact(email, func(old *directory.Contact) error {
							t, err := directory.LookupCCTLD(r.TLD)
							if err != nil {
								return err
							}
							if old.RoleFor(t.Code) != "" {
								return fmt.Errorf("%s is listed twice for %s", email, t.Code)
							}
							role, err := directory.NormalizeRole(r.Role)
							if err != nil {
								return err
							}
							old.SetRole(t.Code, role)
							return nil
						}); err != nil {
							return "", lineErr(err)
						}
						continue
					}
					norm := c
					if err := norm.Normalize(); err != nil {
						return "", lineErr(err)
					}
					seen[email] = firstRow{r.Line, norm}
					if p, ok := bundle[email]; ok {
						k, _, err := contactKey(p, email, false, now)
						if err != nil {
							return "", lineErr(err)
						}
						c.Key = k
						withKey++
					}
					if _, err := tx.AddContact(c); err != nil {
						return "", lineErr(err)
					}
					contacts++
				}
				return fmt.Sprintf("imported %s, %s, %s from %s", plural(members, "new ccTLD"), plural(contacts, "contact"), plural(withKey, "key"), args[0]), nil
			})
			if err == nil && keyFile != "" && withKey < contacts {
				g.warnf("%d of %s have no key in %s", contacts-withKey, plural(contacts, "contact"), keyFile)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&keyFile, "keys", "", "bundle of armored public keys, matched to contacts by email")
	return cmd
}

// differs names the first contact column in which a and b differ, other
// than the role.
func differs(a, b directory.Contact) string {
	switch {
	case a.Name != b.Name:
		return "name"
	case !slices.Equal(a.Phones, b.Phones):
		return "phones"
	case !slices.Equal(a.Languages, b.Languages):
		return "languages"
	case a.TimeZone != b.TimeZone:
		return "timezone"
	case a.Always != b.Always:
		return "24x7"
	}
	return ""
}

package export

import (
	"errors"
	"fmt"
	"time"

	"github.com/ccdir/ccdir/directory"
)

// ImportResult counts what [Import] added.
type ImportResult struct {
	Members  int // ccTLDs that were not members yet
	Contacts int
	Keys     int // contacts given a key of the bundle
}

// ImportError names the line of the input whose row [Import] refused.
type ImportError struct {
	Line int
	Err  error
}

func (e *ImportError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

func (e *ImportError) Unwrap() error { return e.Err }

// Import applies rows read by [ParseCSV] in tx, which the caller commits
// or rolls back: the whole input or nothing. A ccTLD that is not a member
// yet is added with the row's org (a row naming another org than a
// member's is refused). The first row of an email adds the contact, with
// its key from bundle (nil for none) checked by [ContactKey] at now;
// each later row of that email adds a role for its ccTLD and must agree
// with the first on every detail of [directory.ContactFields]. Errors
// are [*ImportError].
func Import(tx *directory.Tx, rows []CSVRow, bundle KeyBundle, now time.Time) (ImportResult, error) {
	var res ImportResult
	type firstRow struct {
		line int
		c    directory.Contact
	}
	seen := map[string]firstRow{}
	for _, r := range rows {
		lineErr := func(err error) error { return &ImportError{Line: r.Line, Err: err} }
		m, err := tx.Member(r.TLD)
		switch {
		case errors.Is(err, directory.ErrNotFound):
			if _, err := tx.AddMember(directory.Member{TLD: r.TLD, Org: r.Org}); err != nil {
				return res, lineErr(err)
			}
			res.Members++
		case err != nil:
			return res, lineErr(err)
		case r.Org != "" && r.Org != m.Org:
			return res, lineErr(fmt.Errorf("org %q differs from %q, the registered org of %s", r.Org, m.Org, m.TLD))
		}
		c := directory.Contact{Email: r.Email, Name: r.Name, Phones: r.Phones,
			Roles:     []directory.Role{{TLD: r.TLD, Role: r.Role}},
			Languages: r.Languages, TimeZone: r.TimeZone, Always: r.Always}
		email, err := directory.NormalizeEmail(r.Email)
		if err != nil {
			return res, lineErr(err)
		}
		if first, ok := seen[email]; ok {
			// Another ccTLD for a contact of an earlier row, which must
			// say the same of the contact.
			if err := c.Normalize(); err != nil {
				return res, lineErr(err)
			}
			if col := differs(&first.c, &c); col != "" {
				return res, lineErr(fmt.Errorf("column %s for %s differs from line %d; a contact serving several ccTLDs must be the same on each row", col, email, first.line))
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
				return res, lineErr(err)
			}
			continue
		}
		norm := c
		if err := norm.Normalize(); err != nil {
			return res, lineErr(err)
		}
		seen[email] = firstRow{r.Line, norm}
		if p, ok := bundle[email]; ok {
			k, _, err := ContactKey(p, email, false, now)
			if err != nil {
				return res, lineErr(err)
			}
			c.Key = k
			res.Keys++
		}
		if _, err := tx.AddContact(c); err != nil {
			return res, lineErr(err)
		}
		res.Contacts++
	}
	return res, nil
}

// differs names the column of the first detail of
// [directory.ContactFields] in which a and b differ, or "".
func differs(a, b *directory.Contact) string {
	for _, f := range directory.DetailFields() {
		if f.Text(a) != f.Text(b) {
			return f.Column
		}
	}
	return ""
}

package export

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
)

// ImportResult counts what [Import] added.
type ImportResult struct {
	Members  int // ccTLDs that were not members yet
	Contacts int
	Keys     int // contacts given a key of the bundle
	// KeysNoUID: keys of them found by the fingerprint the input names,
	// without a user ID for the contact's email (taken with --any-uid,
	// or kept across an email change).
	KeysNoUID int
}

// ImportError names the line of the input whose row [Import] refused.
type ImportError struct {
	Line  int
	Where string // for input other than CSV ([CSVRow].Where); "" for a line
	Err   error
}

func (e *ImportError) Error() string {
	if e.Where != "" {
		return fmt.Sprintf("%s: %v", e.Where, e.Err)
	}
	return fmt.Sprintf("line %d: %v", e.Line, e.Err)
}

func (e *ImportError) Unwrap() error { return e.Err }

// Import applies rows read by [ParseCSV] (or [ExportRows]) in tx, which
// the caller commits or rolls back: the whole input or nothing. A ccTLD
// that is not a member yet is added with the row's org, status and
// country (a row naming another org, status or country than a member's
// is refused); a row that names only a member ([CSVRow.MemberOnly]) adds
// nothing more. The first row of an email adds the contact, with its key
// from bundle (nil for none) checked by [ContactKey] at now: the key with
// the fingerprint the row names (Key), which need not have a user ID for
// the email, or else the one key with a user ID for the email. Each later
// row of that email adds a role for its ccTLD and must agree with the
// first on every detail of [directory.ContactFields] and the key. Errors
// are [*ImportError].
func Import(tx *directory.Tx, rows []CSVRow, bundle *KeyBundle, now time.Time) (ImportResult, error) {
	var res ImportResult
	type firstRow struct {
		line  int
		where string
		c     directory.Contact
		key   string
	}
	seen := map[string]firstRow{}
	for _, r := range rows {
		lineErr := func(err error) error { return &ImportError{Line: r.Line, Where: r.Where, Err: err} }
		m, err := tx.Member(r.TLD)
		switch {
		case errors.Is(err, directory.ErrNotFound):
			if _, err := tx.AddMember(directory.Member{TLD: r.TLD, Org: r.Org, Status: r.Status, Country: r.Country}); err != nil {
				return res, lineErr(err)
			}
			res.Members++
		case err != nil:
			return res, lineErr(err)
		case r.Org != "" && r.Org != m.Org:
			return res, lineErr(fmt.Errorf("org %q differs from %q, the registered org of %s", r.Org, m.Org, m.TLD))
		case r.Status != "" && r.Status != m.Status:
			return res, lineErr(fmt.Errorf("status %q differs from %q, the status of %s", r.Status, m.Status, m.TLD))
		case r.Country != "" && !strings.EqualFold(r.Country, m.Country):
			return res, lineErr(fmt.Errorf("country %q differs from %q, the country of %s", r.Country, m.Country, m.TLD))
		}
		if r.MemberOnly() {
			continue
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
			col := differs(&first.c, &c)
			if col == "" && !strings.EqualFold(first.key, r.Key) {
				col = "key"
			}
			if col != "" {
				firstAt := fmt.Sprintf("line %d", first.line)
				if first.where != "" {
					firstAt = first.where
				}
				return res, lineErr(fmt.Errorf("column %s for %s differs from %s; a contact serving several ccTLDs must be the same on each row", col, email, firstAt))
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
		seen[email] = firstRow{r.Line, r.Where, norm, r.Key}
		if bundle != nil {
			var p *keys.Public
			byFpr := r.Key != ""
			if byFpr {
				if p = bundle.Fingerprint(r.Key); p == nil {
					return res, lineErr(fmt.Errorf("the key %s of %s is not in the key bundle", strings.ToUpper(r.Key), email))
				}
			} else if p, err = bundle.Email(email); err != nil {
				return res, lineErr(err)
			}
			if p != nil {
				// A key the input names by fingerprint is the contact's
				// whatever its user IDs say.
				k, noUID, err := ContactKey(p, email, byFpr, now)
				if err != nil {
					return res, lineErr(err)
				}
				c.Key = k
				res.Keys++
				if noUID {
					res.KeysNoUID++
				}
			}
		}
		if _, err := tx.AddContact(c); err != nil {
			return res, lineErr(err)
		}
		res.Contacts++
	}
	return res, nil
}

// ExportRows are the rows of e, a JSON export ([ParseJSON]), for
// [Import]: one per contact of each member (with the fingerprint of its
// key), one for each member without contacts; each names its place in
// the document (Where).
func ExportRows(e *Export) []CSVRow {
	var rows []CSVRow
	for i, m := range e.Members {
		base := CSVRow{TLD: m.TLD, Org: m.Org, Status: m.Status, Country: m.Country}
		if len(m.Contacts) == 0 {
			r := base
			r.Where = fmt.Sprintf("members[%d] (%s)", i, m.TLD)
			rows = append(rows, r)
		}
		for j, c := range m.Contacts {
			r := base
			r.Where = fmt.Sprintf("members[%d].contacts[%d] (%s)", i, j, c.Email)
			r.Name, r.Email, r.Role, r.TimeZone, r.Always = c.Name, c.Email, c.Role, c.TimeZone, c.Always
			r.Languages = append([]string(nil), c.Languages...)
			for _, p := range c.Phones {
				r.Phones = append(r.Phones, directory.Phone{Number: p.Number, Emergency: p.Emergency})
			}
			if c.Key != nil {
				r.Key = c.Key.Fingerprint
			}
			rows = append(rows, r)
		}
	}
	return rows
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

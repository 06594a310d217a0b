package export

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/ccdir/ccdir/directory"
)

// Problems of a [CoverageRow], worst first.
const (
	ProblemNotMember  = "not a member"
	ProblemNoSecurity = "no security contact"
	ProblemNoKey      = "no usable key"
	// ProblemUnreachable: the security contacts with a usable key all
	// bounce (bounces.limit in a row).
	ProblemUnreachable = "unreachable (bounces)"
)

// ErrUnreachable is wrapped by what the usable function of
// ComputeCoverage returns for a contact whose key can be used but whose
// mail bounces: it counts in CoverageRow.Unreachable, not as a key
// problem.
var ErrUnreachable = errors.New("unreachable: its mail bounces")

// CoverageRow is one ccTLD in a [Coverage] report.
type CoverageRow struct {
	TLD        string `json:"tld"`     // A-label
	Unicode    string `json:"unicode"` // U-label, equal to TLD for ASCII ccTLDs
	Country    string `json:"country"` // ISO 3166-1 alpha-2 code
	Name       string `json:"name"`    // English name of the country or territory
	Dormant    bool   `json:"dormant"` // delegated but taking no registrations
	Member     bool   `json:"member"`
	Security   int    `json:"security"`    // security contacts
	UsableKeys int    `json:"usable_keys"` // security contacts whose key can be used now (and who are not unreachable)
	// Unreachable counts the security contacts whose key can be used but
	// whose mail bounces (ErrUnreachable).
	Unreachable int    `json:"unreachable"`
	Problem     string `json:"problem"` // ProblemNotMember, ProblemNoSecurity, ProblemNoKey, ProblemUnreachable or ""
}

// Coverage says which delegated ccTLDs the directory can reach: a ccTLD is
// covered when it is a member with at least one security contact whose key
// can be used.
type Coverage struct {
	Rows      []CoverageRow `json:"rows"`      // sorted by TLD
	Delegated int           `json:"delegated"` // delegated ccTLDs (len(all))
	Members   int           `json:"members"`   // members of the directory
	Covered   int           `json:"covered"`   // members with a security contact with a usable key
}

// ComputeCoverage reports, for every ccTLD of all (usually
// [directory.CCTLDs]) and every member missing from all, whether the
// directory covers it. usable reports why a contact's key cannot be used
// now (nil if it can); contacts without a key count as unusable and are
// not passed to it. A nil usable accepts every key that had not stopped
// working at the time of the snapshot's head, as [KeyCheck] reads it
// (keys.Public.UsableUntil: a subkey that expired counts, not only the
// primary key's recorded expiry).
func ComputeCoverage(s *directory.Snapshot, all []directory.CCTLD, usable func(*directory.Contact) error) *Coverage {
	if usable == nil {
		usable = func(*directory.Contact) error { return nil }
		if head, ok := parseTime(s.Time); ok {
			usable = KeyCheck{}.resolve(head).Usable
		}
	}
	cov := &Coverage{Delegated: len(all), Members: len(s.Members)}
	members := make(map[string]bool, len(s.Members))
	for _, m := range s.Members {
		members[m.TLD] = true
	}
	listed := make(map[string]bool, len(all))
	for _, t := range all {
		listed[t.Code] = true
		cov.Rows = append(cov.Rows, CoverageRow{
			TLD: t.Code, Unicode: t.Unicode, Country: t.Country, Name: t.Name, Dormant: t.Dormant,
		})
	}
	for _, m := range s.Members {
		if !listed[m.TLD] {
			listed[m.TLD] = true
			cov.Rows = append(cov.Rows, CoverageRow{TLD: m.TLD, Unicode: m.TLD, Country: m.Country})
		}
	}
	slices.SortStableFunc(cov.Rows, func(a, b CoverageRow) int { return strings.Compare(a.TLD, b.TLD) })

	ok := make(map[string]bool, len(s.Contacts))          // email → key usable
	unreachable := make(map[string]bool, len(s.Contacts)) // email → usable key, mail bounces
	for i := range s.Contacts {
		c := &s.Contacts[i]
		var err error
		if c.Key != nil {
			err = usable(c)
		}
		ok[c.Email] = c.Key != nil && err == nil
		unreachable[c.Email] = c.Key != nil && errors.Is(err, ErrUnreachable)
	}
	for i := range cov.Rows {
		r := &cov.Rows[i]
		if r.Unicode == "" {
			r.Unicode = r.TLD
		}
		r.Member = members[r.TLD]
		for _, c := range s.Contacts {
			if c.RoleFor(r.TLD) != directory.RoleSecurity {
				continue
			}
			r.Security++
			if ok[c.Email] {
				r.UsableKeys++
			}
			if unreachable[c.Email] {
				r.Unreachable++
			}
		}
		switch {
		case !r.Member:
			r.Problem = ProblemNotMember
		case r.Security == 0:
			r.Problem = ProblemNoSecurity
		case r.UsableKeys == 0 && r.Unreachable > 0:
			r.Problem = ProblemUnreachable
		case r.UsableKeys == 0:
			r.Problem = ProblemNoKey
		default:
			cov.Covered++
		}
	}
	return cov
}

// WriteCoverageText writes a summary line, then one line per ccTLD with a
// problem, or per ccTLD if all is true.
func WriteCoverageText(w io.Writer, c *Coverage, all bool) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%d of %d members covered (a security contact with a usable key); %d of %d delegated ccTLDs are members\n",
		c.Covered, c.Members, c.Members, c.Delegated)
	for _, r := range c.Rows {
		if !all && r.Problem == "" {
			continue
		}
		tld := directory.CCTLD{Code: r.TLD, Unicode: r.Unicode}.Display()
		name := printable(r.Name)
		if r.Dormant {
			name += " (dormant)"
		}
		status := "ok"
		if r.Problem != "" {
			status = r.Problem
		}
		var counts string
		if r.Member {
			counts = fmt.Sprintf("%d security, %d usable %s", r.Security, r.UsableKeys, map[bool]string{true: "key", false: "keys"}[r.UsableKeys == 1])
			if r.Unreachable > 0 {
				counts += fmt.Sprintf(", %d unreachable", r.Unreachable)
			}
		}
		line := fmt.Sprintf("%-16s %-2s  %-26s %-25s %s", tld, r.Country, shorten(name), counts, status)
		fmt.Fprintln(bw, strings.TrimRight(line, " "))
	}
	return bw.Flush()
}

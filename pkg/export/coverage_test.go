package export

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ccdir/ccdir/directory"
)

func lookup(t *testing.T, codes ...string) []directory.CCTLD {
	t.Helper()
	var out []directory.CCTLD
	for _, c := range codes {
		tld, err := directory.LookupCCTLD(c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tld)
	}
	return out
}

func TestCoverage(t *testing.T) {
	s := testSnapshot()
	s.Members = append(s.Members, directory.Member{TLD: "br", Org: "NIC.br", Country: "BR", Status: directory.StatusActive})
	all := lookup(t, "br", "cn", "de", "pt", "xn--p1ai")
	// The Anycast NOC's key is revoked: only Дмитрий's key is usable for рф.
	usable := func(c *directory.Contact) error {
		if c.Key == nil {
			t.Errorf("usable called for %s, who has no key", c.Email)
		}
		if c.Email == "noc@anycast.example" {
			return errors.New("revoked")
		}
		if exp, ok := c.Key.ExpiresAt(); ok && exp.Year() < 2025 {
			return errors.New("expired")
		}
		return nil
	}
	cov := ComputeCoverage(s, all, usable)
	if cov.Delegated != 5 || cov.Members != 4 || cov.Covered != 2 {
		t.Errorf("delegated %d members %d covered %d, want 5 4 2", cov.Delegated, cov.Members, cov.Covered)
	}
	want := map[string]CoverageRow{
		"br":       {TLD: "br", Unicode: "br", Country: "BR", Name: "Brazil", Member: true, Problem: ProblemNoSecurity},
		"cn":       {TLD: "cn", Unicode: "cn", Country: "CN", Name: "China", Member: true, Security: 1, Problem: ProblemNoKey},
		"de":       {TLD: "de", Unicode: "de", Country: "DE", Name: "Germany", Problem: ProblemNotMember},
		"pt":       {TLD: "pt", Unicode: "pt", Country: "PT", Name: "Portugal", Member: true, Security: 1, UsableKeys: 1},
		"xn--p1ai": {TLD: "xn--p1ai", Unicode: "рф", Country: "RU", Name: "Russian Federation", Member: true, Security: 2, UsableKeys: 1},
	}
	if len(cov.Rows) != len(want) {
		t.Fatalf("%d rows: %+v", len(cov.Rows), cov.Rows)
	}
	for i, r := range cov.Rows {
		if r != want[r.TLD] {
			t.Errorf("row %d: %+v, want %+v", i, r, want[r.TLD])
		}
		if i > 0 && cov.Rows[i-1].TLD >= r.TLD {
			t.Error("rows not sorted")
		}
	}

	var buf bytes.Buffer
	if err := WriteCoverageText(&buf, cov, false); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if lines[0] != "2 of 4 members covered (a security contact with a usable key); 4 of 5 delegated ccTLDs are members" {
		t.Errorf("summary %q", lines[0])
	}
	if len(lines) != 4 || !strings.HasPrefix(lines[1], "br ") || !strings.HasSuffix(lines[1], ProblemNoSecurity) ||
		!strings.HasSuffix(lines[2], ProblemNoKey) || !strings.HasSuffix(lines[3], ProblemNotMember) {
		t.Errorf("problem lines:\n%s", buf.String())
	}
	buf.Reset()
	if err := WriteCoverageText(&buf, cov, true); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != 6 {
		t.Errorf("all=true: %d lines, want 6:\n%s", n, buf.String())
	}
	if !strings.Contains(buf.String(), "рф (xn--p1ai)") || strings.Contains(buf.String(), " \n") {
		t.Errorf("all=true:\n%s", buf.String())
	}
}

func TestCoverageDefaultUsable(t *testing.T) {
	// Without a usable func a key counts until it expires (before the head: wang's).
	cov := ComputeCoverage(testSnapshot(), directory.CCTLDs(), nil)
	if cov.Delegated != len(directory.CCTLDs()) || cov.Members != 3 || cov.Covered != 2 {
		t.Errorf("%+v", cov)
	}
	for _, r := range cov.Rows {
		if r.TLD == "cn" && r.Problem != ProblemNoKey {
			t.Errorf("cn: %+v", r)
		}
	}
}

func TestCoverageMemberMissingFromList(t *testing.T) {
	s := &directory.Snapshot{Members: []directory.Member{{TLD: "zz", Org: "Test", Status: "active"}}}
	cov := ComputeCoverage(s, nil, nil)
	if len(cov.Rows) != 1 || cov.Rows[0].TLD != "zz" || !cov.Rows[0].Member || cov.Rows[0].Problem != ProblemNoSecurity {
		t.Errorf("%+v", cov.Rows)
	}
}

// TestCoverageUnreachable: a security contact whose key is usable but
// whose mail bounces (ErrUnreachable) is not a usable one; a ccTLD left
// with none is unreachable, not "no usable key".
func TestCoverageUnreachable(t *testing.T) {
	s := testSnapshot()
	var pt string
	for _, c := range s.Contacts {
		for _, r := range c.Roles {
			if r.TLD == "pt" && r.Role == directory.RoleSecurity {
				pt = c.Email
			}
		}
	}
	cov := ComputeCoverage(s, lookup(t, "pt"), func(c *directory.Contact) error {
		if c.Email == pt {
			return fmt.Errorf("%w: 3 bounces in a row", ErrUnreachable)
		}
		return nil
	})
	for _, r := range cov.Rows {
		if r.TLD == "pt" && (r.Problem != ProblemUnreachable || r.UsableKeys != 0 || r.Unreachable != 1) {
			t.Errorf("pt: %+v", r)
		}
	}
	var b strings.Builder
	if err := WriteCoverageText(&b, cov, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "1 security, 0 usable keys, 1 unreachable unreachable (bounces)") {
		t.Errorf("text:\n%s", b.String())
	}
}

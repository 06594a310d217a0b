package digest_test

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/digest"
)

func ExampleParseCSV() {
	in := "tld,org,name,email,phones,role,languages,timezone,24x7\n" +
		"pt,Associação DNS.PT,Ana Sousa,ana@dns.pt,emergency:+351211234567;+351217654321,security,pt;en,Europe/Lisbon,yes\n" +
		"pt,Associação DNS.PT,João,joao@dns.pt,+351219999999,admin,,,perhaps\n"
	rows, err := digest.ParseCSV(strings.NewReader(in))
	var ce *digest.CSVError
	if errors.As(err, &ce) {
		fmt.Println(err)
	}
	fmt.Println(len(rows))
	// Output:
	// line 3, column 24x7: "perhaps" is not yes or no
	// 0
}

func ExampleWriteCoverageText() {
	s := &directory.Snapshot{
		Time:    "2025-03-01T12:00:00Z",
		Members: []directory.Member{{TLD: "pt", Org: "Associação DNS.PT", Country: "PT", Status: "active"}},
		Contacts: []directory.Contact{{
			Email: "ana@dns.pt", Name: "Ana Sousa",
			Phones: []directory.Phone{{Number: "+351211234567"}},
			Roles:  []directory.Role{{TLD: "pt", Role: directory.RoleSecurity}},
		}},
	}
	var all []directory.CCTLD
	for _, code := range []string{"pt", "xn--p1ai"} {
		t, _ := directory.LookupCCTLD(code)
		all = append(all, t)
	}
	cov := digest.ComputeCoverage(s, all, nil)
	digest.WriteCoverageText(os.Stdout, cov, true)
	// Output:
	// 0 of 1 members covered (a security contact with a usable key); 1 of 2 delegated ccTLDs are members
	// pt               PT  Portugal                   1 security, 0 usable keys no usable key
	// рф (xn--p1ai)    RU  Russian Federation                                   not a member
}

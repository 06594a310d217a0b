package export_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/export"
)

func ExampleParseCSV() {
	in := "tld,org,name,email,phones,role,languages,timezone,24x7\n" +
		"pt,Associação DNS.PT,Ana Sousa,ana@dns.pt,emergency:+351211234567;+351217654321,security,pt;en,Europe/Lisbon,yes\n" +
		"pt,Associação DNS.PT,João,joao@dns.pt,+351219999999,admin,,,perhaps\n"
	rows, err := export.ParseCSV(strings.NewReader(in))
	var ce *export.CSVError
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
	cov := export.ComputeCoverage(s, all, nil)
	export.WriteCoverageText(os.Stdout, cov, true)
	// Output:
	// 0 of 1 members covered (a security contact with a usable key); 1 of 2 delegated ccTLDs are members
	// pt               PT  Portugal                   1 security, 0 usable keys no usable key
	// рф (xn--p1ai)    RU  Russian Federation                                   not a member
}

func ExampleDiff() {
	prev := &directory.Snapshot{
		Head:    directory.Head{Serial: 7},
		Members: []directory.Member{{TLD: "pt", Org: "Associação DNS.PT", Status: "active"}},
		Contacts: []directory.Contact{{
			ID: 1, Email: "ana@dns.pt", Name: "Ana Sousa",
			Phones: []directory.Phone{{Number: "+351211234567"}},
			Roles:  []directory.Role{{TLD: "pt", Role: directory.RoleSecurity}},
		}},
	}
	cur := &directory.Snapshot{
		Head:    directory.Head{Serial: 9},
		Members: prev.Members,
		Contacts: []directory.Contact{{
			ID: 1, Email: "ana.sousa@dns.pt", Name: "Ana Sousa",
			Phones: []directory.Phone{{Number: "+351211234567", Emergency: true}},
			Roles:  []directory.Role{{TLD: "pt", Role: directory.RoleSecurity}},
			Key:    &directory.Key{Fingerprint: "AAAA1111BBBB2222CCCC3333DDDD4444EEEE5555", Expires: "2025-04-01T00:00:00Z"},
		}},
	}
	now := time.Date(2025, 3, 2, 8, 0, 0, 0, time.UTC)
	for _, c := range export.Diff(prev, cur, now, export.KeyCheck{}) {
		fmt.Printf("%s: %s\n", c.TLD, c)
	}
	// Output:
	// pt: Ana Sousa <ana.sousa@dns.pt>: email changed: ana@dns.pt → ana.sousa@dns.pt
	// pt: Ana Sousa <ana.sousa@dns.pt>: phones changed: +351211234567 → +351211234567 (emergency)
	// pt: Ana Sousa <ana.sousa@dns.pt>: new key: AAAA 1111 BBBB 2222 CCCC 3333 DDDD 4444 EEEE 5555 (expires 2025-04-01)
	// pt: Ana Sousa <ana.sousa@dns.pt>: key expiring: AAAA 1111 BBBB 2222 CCCC 3333 DDDD 4444 EEEE 5555 expires on 2025-04-01
}

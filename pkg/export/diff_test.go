package export

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
)

// digestNow is the date of the digests in these tests.
var digestNow = time.Date(2025, 3, 2, 8, 0, 0, 0, time.UTC)

// testUsable refuses Сергей's key as revoked and any key expired at now.
func testUsable(now time.Time) func(*directory.Contact) error {
	return func(c *directory.Contact) error {
		if c.Key == nil {
			panic("usable called for a contact without a key: " + c.Email)
		}
		if c.Email == "sergey@cctld.ru" {
			return errors.New("key revoked: key compromised")
		}
		if exp, ok := c.Key.ExpiresAt(); ok && !exp.After(now) {
			return errors.New("key expired")
		}
		return nil
	}
}

// curSnapshot is testSnapshot at serial 57 with contact IDs, a new member
// (br) with a contact whose key expires within 60 days, and a new contact
// of рф whose key is revoked.
func curSnapshot() *directory.Snapshot {
	s := testSnapshot()
	s.Head = directory.Head{Serial: 57, Hash: "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"}
	s.Time = "2025-03-02T07:30:00Z"
	s.Members = append(s.Members, directory.Member{
		TLD: "br", Org: "Núcleo de Informação e Coordenação do Ponto BR", Country: "BR", Status: directory.StatusActive,
	})
	ids := map[string]int64{
		"ana.sousa@dns.pt": 1, "dmitry@cctld.ru": 2, "joao@dns.pt": 3,
		"noc@anycast.example": 4, "omar@cnnic.cn": 5, "wang@cnnic.cn": 6,
	}
	for i := range s.Contacts {
		s.Contacts[i].ID = ids[s.Contacts[i].Email]
	}
	s.Contacts = append(s.Contacts,
		directory.Contact{
			ID: 9, Email: "maria@nic.br", Name: "Maria Luíza Ferreira",
			Phones:    []directory.Phone{{Number: "+551155093500", Emergency: true}},
			Roles:     []directory.Role{{TLD: "br", Role: directory.RoleSecurity}},
			Languages: []string{"pt"}, TimeZone: "America/Sao_Paulo", Always: true,
			Key: &directory.Key{
				Fingerprint: "BBBB2222CCCC3333DDDD4444EEEE5555FFFF6666", Algorithm: "ed25519",
				Created: "2023-04-15T00:00:00Z", Expires: "2025-04-15T00:00:00Z", Armored: fakeKey("maria"),
			},
			Confirmed: "2025-03-01T18:00:00Z",
		},
		directory.Contact{
			ID: 10, Email: "sergey@cctld.ru", Name: "Сергей Смирнов",
			Phones:    []directory.Phone{{Number: "+74957305678"}},
			Roles:     []directory.Role{{TLD: "xn--p1ai", Role: directory.RoleAdmin}},
			Languages: []string{"ru"}, TimeZone: "Europe/Moscow",
			Key: &directory.Key{
				Fingerprint: "CCCC3333DDDD4444EEEE5555FFFF66667777AAAA", Algorithm: "rsa3072",
				Created: "2024-02-02T00:00:00Z", Armored: fakeKey("sergey"),
			},
			Confirmed: "2025-03-02T07:30:00Z",
		},
	)
	slices.SortFunc(s.Contacts, func(a, b directory.Contact) int { return strings.Compare(a.Email, b.Email) })
	return s
}

// prevSnapshot is the directory the last digest (serial 42) showed: it
// differs from curSnapshot in every way Diff reports.
func prevSnapshot() *directory.Snapshot {
	s := curSnapshot()
	s.Head = directory.Head{Serial: 42, Hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
	s.Time = "2025-02-01T09:00:00Z"
	// br is new; de is gone; cnnic changed its org and status.
	s.Members = slices.DeleteFunc(s.Members, func(m directory.Member) bool { return m.TLD == "br" })
	s.Members = append(s.Members, directory.Member{TLD: "de", Org: "DENIC eG", Country: "DE", Status: directory.StatusActive})
	for i := range s.Members {
		if s.Members[i].TLD == "cn" {
			s.Members[i].Org, s.Members[i].Status = "CNNIC", directory.StatusActive
		}
	}
	s.Contacts = slices.DeleteFunc(s.Contacts, func(c directory.Contact) bool {
		return c.Email == "maria@nic.br" || c.Email == "sergey@cctld.ru"
	})
	for i := range s.Contacts {
		c := &s.Contacts[i]
		switch c.Email {
		case "omar@cnnic.cn": // Arabic only then
			c.Languages = []string{"ar"}
		case "ana.sousa@dns.pt": // one phone then, two now; admin for cn then
			c.Phones = c.Phones[:1]
			c.Roles = append([]directory.Role{{TLD: "cn", Role: directory.RoleAdmin}}, c.Roles...)
		case "dmitry@cctld.ru": // another address and name, no key then
			c.Email, c.Name, c.Key = "d.ivanov@cctld.ru", "Дима Иванов", nil
		case "joao@dns.pt": // had a key and was 24x7
			c.Always = true
			c.Key = &directory.Key{
				Fingerprint: "DDDD4444EEEE5555FFFF6666AAAA7777BBBB8888", Algorithm: "ed25519",
				Created: "2023-01-01T00:00:00Z", Armored: fakeKey("joao"),
			}
		case "noc@anycast.example": // security for pt and admin for de then; another key, no time zone
			c.TimeZone = ""
			c.Roles = []directory.Role{{TLD: "de", Role: directory.RoleAdmin}, {TLD: "pt", Role: directory.RoleSecurity}}
			c.Key = &directory.Key{
				Fingerprint: "9999AAAA8888BBBB7777CCCC6666DDDD5555EEEE", Algorithm: "rsa4096",
				Created: "2022-06-01T00:00:00Z", Expires: "2025-06-01T00:00:00Z", Armored: fakeKey("oldnoc"),
			}
		}
	}
	s.Contacts = append(s.Contacts,
		directory.Contact{
			ID: 7, Email: "klaus@denic.de", Name: "Klaus Müller",
			Phones: []directory.Phone{{Number: "+496927235000"}},
			Roles:  []directory.Role{{TLD: "de", Role: directory.RoleSecurity}},
		},
		directory.Contact{
			ID: 8, Email: "li.na@cnnic.cn", Name: "李娜",
			Phones: []directory.Phone{{Number: "+861058813001"}},
			Roles:  []directory.Role{{TLD: "cn", Role: directory.RoleAdmin}},
		},
	)
	slices.SortFunc(s.Contacts, func(a, b directory.Contact) int { return strings.Compare(a.Email, b.Email) })
	return s
}

func changeLines(cs []Change) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "%s | %s | %s\n", c.TLD, c.Kind, c)
	}
	return b.String()
}

func TestDiffGolden(t *testing.T) {
	got := Diff(prevSnapshot(), curSnapshot(), digestNow, KeyCheck{Usable: testUsable(digestNow)})
	kinds := map[ChangeKind]bool{}
	for _, c := range got {
		kinds[c.Kind] = true
	}
	for k := ChangeMemberAdded; k <= ChangeKeyUnusable; k++ {
		if !kinds[k] && k != ChangeKeyUpdated {
			t.Errorf("the fixture shows no %q", k)
		}
	}
	// Reordered inputs give the same list.
	prev, cur := prevSnapshot(), curSnapshot()
	slices.Reverse(prev.Contacts)
	slices.Reverse(cur.Members)
	if again := Diff(prev, cur, digestNow, KeyCheck{Usable: testUsable(digestNow)}); !slices.Equal(got, again) {
		t.Errorf("the order of the snapshots changes the diff:\n%s", changeLines(again))
	}
	golden(t, "changes.txt", []byte(changeLines(got)))
}

func TestDiffFirstDigest(t *testing.T) {
	if got := Diff(nil, curSnapshot(), digestNow, KeyCheck{}); got != nil {
		t.Errorf("Diff(nil, …) = %v", got)
	}
}

func TestDiffSame(t *testing.T) {
	s := testSnapshot()
	// Only the state of the keys is listed: wang's expired key, under cn.
	want := []Change{{
		Kind: ChangeKeyUnusable, TLD: "cn", Email: "wang@cnnic.cn", Name: "王小明",
		Detail: "5555 6666 7777 8888 9999 0000 1111 2222 3333 4444: key expired",
	}}
	if got := Diff(s, testSnapshot(), digestNow, KeyCheck{Usable: testUsable(digestNow)}); !slices.Equal(got, want) {
		t.Errorf("Diff of equal snapshots:\n%s", changeLines(got))
	}
	// Without usable, an expired key is named with its date.
	want[0].Detail = "5555 6666 7777 8888 9999 0000 1111 2222 3333 4444 expired on 2024-12-31"
	if got := Diff(s, testSnapshot(), digestNow, KeyCheck{}); !slices.Equal(got, want) {
		t.Errorf("Diff with nil usable:\n%s", changeLines(got))
	}
}

// diffBase is one member with one contact, matched by ID.
func diffBase() *directory.Snapshot {
	return &directory.Snapshot{
		Members: []directory.Member{{TLD: "pt", Org: "Associação DNS.PT", Country: "PT", Status: directory.StatusActive}},
		Contacts: []directory.Contact{{
			ID: 1, Email: "ana@dns.pt", Name: "Ana Sousa",
			Phones: []directory.Phone{{Number: "+351211234567", Emergency: true}},
			Roles:  []directory.Role{{TLD: "pt", Role: directory.RoleSecurity}},
			Key: &directory.Key{
				Fingerprint: "AAAA1111BBBB2222CCCC3333DDDD4444EEEE5555",
				Expires:     "2027-01-10T09:00:00Z",
			},
		}},
	}
}

func TestDiffKinds(t *testing.T) {
	const (
		fpA = "AAAA 1111 BBBB 2222 CCCC 3333 DDDD 4444 EEEE 5555"
		fpB = "BBBB 1111 BBBB 2222 CCCC 3333 DDDD 4444 EEEE 5555"
	)
	newKey := func() *directory.Key {
		return &directory.Key{Fingerprint: strings.ReplaceAll(fpB, " ", ""), Expires: "2028-01-01T00:00:00Z"}
	}
	tests := []struct {
		name   string
		prev   func(*directory.Snapshot) // applied to the earlier snapshot
		cur    func(*directory.Snapshot) // applied to the later one
		usable func(*directory.Contact) error
		want   []Change
	}{
		{
			name: "member added",
			cur: func(s *directory.Snapshot) {
				s.Members = append(s.Members, directory.Member{TLD: "xn--p1ai", Org: "Координационный центр", Status: "active"})
			},
			want: []Change{{Kind: ChangeMemberAdded, TLD: "xn--p1ai", Name: "Координационный центр"}},
		},
		{
			name: "member removed",
			prev: func(s *directory.Snapshot) {
				s.Members = append(s.Members, directory.Member{TLD: "cn", Org: "中国互联网络信息中心", Status: "active"})
			},
			want: []Change{{Kind: ChangeMemberRemoved, TLD: "cn", Name: "中国互联网络信息中心"}},
		},
		{
			name: "member org and status changed",
			cur: func(s *directory.Snapshot) {
				s.Members[0].Org, s.Members[0].Status = "DNS.PT", directory.StatusInactive
			},
			want: []Change{{Kind: ChangeMemberChanged, TLD: "pt", Name: "DNS.PT",
				Detail: "org Associação DNS.PT → DNS.PT; status active → inactive"}},
		},
		{
			name: "member country changed",
			cur:  func(s *directory.Snapshot) { s.Members[0].Country = "" },
			want: []Change{{Kind: ChangeMemberChanged, TLD: "pt", Name: "Associação DNS.PT", Detail: "country PT → none"}},
		},
		{
			name: "contact added",
			cur: func(s *directory.Snapshot) {
				s.Contacts = append(s.Contacts, directory.Contact{ID: 2, Email: "joao@dns.pt", Name: "João",
					Roles: []directory.Role{{TLD: "pt", Role: directory.RoleAdmin}}})
			},
			want: []Change{{Kind: ChangeContactAdded, TLD: "pt", Email: "joao@dns.pt", Name: "João", Detail: "admin, no key"}},
		},
		{
			name: "contact removed",
			prev: func(s *directory.Snapshot) {
				s.Contacts = append(s.Contacts, directory.Contact{ID: 2, Email: "joao@dns.pt", Name: "João",
					Roles: []directory.Role{{TLD: "pt", Role: directory.RoleAdmin}}})
			},
			want: []Change{{Kind: ChangeContactRemoved, TLD: "pt", Email: "joao@dns.pt", Name: "João", Detail: "admin"}},
		},
		{
			name: "email changed, matched by ID",
			cur:  func(s *directory.Snapshot) { s.Contacts[0].Email = "ana.sousa@dns.pt" },
			want: []Change{{Kind: ChangeEmail, TLD: "pt", Email: "ana.sousa@dns.pt", Name: "Ana Sousa",
				Detail: "ana@dns.pt → ana.sousa@dns.pt"}},
		},
		{
			name: "same email, new ID: still the same mailbox",
			cur:  func(s *directory.Snapshot) { s.Contacts[0].ID = 7 },
		},
		{
			name: "no IDs: matched by email",
			prev: func(s *directory.Snapshot) { s.Contacts[0].ID = 0 },
			cur:  func(s *directory.Snapshot) { s.Contacts[0].ID = 0; s.Contacts[0].Name = "Ana C. Sousa" },
			want: []Change{{Kind: ChangeName, TLD: "pt", Email: "ana@dns.pt", Name: "Ana C. Sousa",
				Detail: "Ana Sousa → Ana C. Sousa"}},
		},
		{
			name: "name changed",
			cur:  func(s *directory.Snapshot) { s.Contacts[0].Name = "Ana Conceição Sousa" },
			want: []Change{{Kind: ChangeName, TLD: "pt", Email: "ana@dns.pt", Name: "Ana Conceição Sousa",
				Detail: "Ana Sousa → Ana Conceição Sousa"}},
		},
		{
			name: "phones changed",
			cur: func(s *directory.Snapshot) {
				s.Contacts[0].Phones = []directory.Phone{{Number: "+351211234567"}, {Number: "+351217654321", Emergency: true}}
			},
			want: []Change{{Kind: ChangePhones, TLD: "pt", Email: "ana@dns.pt", Name: "Ana Sousa",
				Detail: "+351211234567 (emergency) → +351211234567, +351217654321 (emergency)"}},
		},
		{
			name: "role added for another ccTLD",
			cur: func(s *directory.Snapshot) {
				s.Contacts[0].Roles = append(s.Contacts[0].Roles, directory.Role{TLD: "xn--p1ai", Role: directory.RoleAdmin})
			},
			want: []Change{{Kind: ChangeRoleAdded, TLD: "xn--p1ai", Email: "ana@dns.pt", Name: "Ana Sousa", Detail: "admin"}},
		},
		{
			name: "role removed",
			prev: func(s *directory.Snapshot) {
				s.Contacts[0].Roles = append(s.Contacts[0].Roles, directory.Role{TLD: "xn--p1ai", Role: directory.RoleAdmin})
			},
			want: []Change{{Kind: ChangeRoleRemoved, TLD: "xn--p1ai", Email: "ana@dns.pt", Name: "Ana Sousa", Detail: "admin"}},
		},
		{
			name: "role removed with its member: only the member is listed",
			prev: func(s *directory.Snapshot) {
				s.Members = append(s.Members, directory.Member{TLD: "de", Org: "DENIC eG", Status: "active"})
				s.Contacts[0].Roles = append(s.Contacts[0].Roles, directory.Role{TLD: "de", Role: directory.RoleAdmin})
			},
			want: []Change{{Kind: ChangeMemberRemoved, TLD: "de", Name: "DENIC eG"}},
		},
		{
			name: "role changed",
			cur:  func(s *directory.Snapshot) { s.Contacts[0].Roles[0].Role = directory.RoleAdmin },
			want: []Change{{Kind: ChangeRoleChanged, TLD: "pt", Email: "ana@dns.pt", Name: "Ana Sousa", Detail: "security → admin"}},
		},
		{
			name: "24x7",
			cur:  func(s *directory.Snapshot) { s.Contacts[0].Always = true },
			want: []Change{{Kind: Change24x7, TLD: "pt", Email: "ana@dns.pt", Name: "Ana Sousa", Detail: "no → yes"}},
		},
		{
			name: "key new",
			prev: func(s *directory.Snapshot) { s.Contacts[0].Key = nil },
			want: []Change{{Kind: ChangeKeyNew, TLD: "pt", Email: "ana@dns.pt", Name: "Ana Sousa",
				Detail: fpA + " (expires 2027-01-10)"}},
		},
		{
			name: "key rotated",
			cur:  func(s *directory.Snapshot) { s.Contacts[0].Key = newKey() },
			want: []Change{{Kind: ChangeKeyRotated, TLD: "pt", Email: "ana@dns.pt", Name: "Ana Sousa",
				Detail: fpA + " → " + fpB + " (expires 2028-01-01)"}},
		},
		{
			name: "same key written otherwise is no rotation",
			cur:  func(s *directory.Snapshot) { s.Contacts[0].Key.Fingerprint = strings.ToLower(fpA) },
		},
		{
			name: "key expiry extended",
			cur:  func(s *directory.Snapshot) { s.Contacts[0].Key.Expires = "" },
			want: []Change{{Kind: ChangeKeyUpdated, TLD: "pt", Email: "ana@dns.pt", Name: "Ana Sousa",
				Detail: "expires 2027-01-10 → never"}},
		},
		{
			name: "key removed",
			cur:  func(s *directory.Snapshot) { s.Contacts[0].Key = nil },
			want: []Change{{Kind: ChangeKeyRemoved, TLD: "pt", Email: "ana@dns.pt", Name: "Ana Sousa", Detail: fpA}},
		},
		{
			name: "key expiring within 60 days, in both",
			prev: func(s *directory.Snapshot) { s.Contacts[0].Key.Expires = "2025-05-01T00:00:00Z" },
			cur:  func(s *directory.Snapshot) { s.Contacts[0].Key.Expires = "2025-05-01T00:00:00Z" },
			want: []Change{{Kind: ChangeKeyExpiring, TLD: "pt", Email: "ana@dns.pt", Name: "Ana Sousa",
				Detail: fpA + " expires on 2025-05-01"}},
		},
		{
			name: "key expiring a second after 60 days: not yet",
			prev: func(s *directory.Snapshot) { s.Contacts[0].Key.Expires = "2025-05-01T08:00:01Z" },
			cur:  func(s *directory.Snapshot) { s.Contacts[0].Key.Expires = "2025-05-01T08:00:01Z" },
		},
		{
			name:   "key unusable",
			usable: func(*directory.Contact) error { return errors.New("key revoked") },
			want: []Change{{Kind: ChangeKeyUnusable, TLD: "pt", Email: "ana@dns.pt", Name: "Ana Sousa",
				Detail: fpA + ": key revoked"}},
		},
		{
			name: "contact of two ccTLDs: listed under both",
			prev: func(s *directory.Snapshot) {
				s.Contacts[0].Roles = append(s.Contacts[0].Roles, directory.Role{TLD: "xn--p1ai", Role: directory.RoleAdmin})
			},
			cur: func(s *directory.Snapshot) {
				s.Contacts[0].Roles = append(s.Contacts[0].Roles, directory.Role{TLD: "xn--p1ai", Role: directory.RoleAdmin})
				s.Contacts[0].Phones = nil
			},
			want: []Change{
				{Kind: ChangePhones, TLD: "pt", Email: "ana@dns.pt", Name: "Ana Sousa", Detail: "+351211234567 (emergency) → none"},
				{Kind: ChangePhones, TLD: "xn--p1ai", Email: "ana@dns.pt", Name: "Ana Sousa", Detail: "+351211234567 (emergency) → none"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev, cur := diffBase(), diffBase()
			if tt.prev != nil {
				tt.prev(prev)
			}
			if tt.cur != nil {
				tt.cur(cur)
			}
			got := Diff(prev, cur, digestNow, KeyCheck{Usable: tt.usable})
			if !slices.Equal(got, tt.want) {
				t.Errorf("got:\n%swant:\n%s", changeLines(got), changeLines(tt.want))
			}
		})
	}
}

func TestDiffOrder(t *testing.T) {
	prev := diffBase()
	cur := diffBase()
	cur.Members = append(cur.Members, directory.Member{TLD: "br", Org: "NIC.br", Status: "active"})
	cur.Contacts[0].Name, cur.Contacts[0].Always, cur.Contacts[0].Key = "Ana C. Sousa", true, nil
	cur.Contacts = append(cur.Contacts,
		directory.Contact{ID: 3, Email: "zeca@dns.pt", Name: "Zeca", Roles: []directory.Role{{TLD: "pt", Role: "admin"}}},
		directory.Contact{ID: 2, Email: "bia@dns.pt", Name: "Bia", Roles: []directory.Role{{TLD: "pt", Role: "admin"}}},
	)
	var got []string
	for _, c := range Diff(prev, cur, digestNow, KeyCheck{}) {
		got = append(got, c.TLD+" "+c.Email+" "+c.Kind.String())
	}
	want := []string{
		"br  member added",
		"pt ana@dns.pt name changed",
		"pt ana@dns.pt 24x7 changed",
		"pt ana@dns.pt key removed",
		"pt bia@dns.pt contact added",
		"pt zeca@dns.pt contact added",
	}
	if !slices.Equal(got, want) {
		t.Errorf("order:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestChangeKindString(t *testing.T) {
	seen := map[string]bool{}
	for k := ChangeMemberAdded; k <= ChangeKeyUnusable; k++ {
		s := k.String()
		if s == "" || strings.HasPrefix(s, "ChangeKind(") || seen[s] {
			t.Errorf("kind %d: %q", int(k), s)
		}
		seen[s] = true
	}
	if s := ChangeKind(0).String(); s != "ChangeKind(0)" {
		t.Errorf("zero kind: %q", s)
	}
}

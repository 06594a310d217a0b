package export

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ccdir/ccdir/directory"
	"github.com/emersion/go-vcard"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fakeKey is armored-looking text; no test parses it as a key.
func fakeKey(tag string) string {
	return "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxjMEZfake" + tag + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n"
}

// testSnapshot is a directory of three members (pt, cn and the IDN рф),
// with names in Portuguese, Chinese, Arabic and Russian, a contact serving
// two ccTLDs, an emergency phone, contacts without a key and an expired key.
func testSnapshot() *directory.Snapshot {
	return &directory.Snapshot{
		Info: directory.Info{
			Name:           "Example ccTLD Security Directory",
			Address:        "directory@ccdir.example",
			ListAddress:    "list@ccdir.example",
			KeyFingerprint: "0123456789abcdef0123456789abcdef01234567",
			PublicKey:      "not in any export",
		},
		Head: directory.Head{Serial: 42, Hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		Time: "2025-03-01T12:00:00Z",
		Members: []directory.Member{
			{TLD: "xn--p1ai", Org: "Coordination Center for TLD RU", Country: "RU", Status: directory.StatusActive},
			{TLD: "pt", Org: "Associação DNS.PT", Country: "PT", Status: directory.StatusActive},
			{TLD: "cn", Org: "China Internet Network Information Center", Country: "CN", Status: directory.StatusInactive},
		},
		Contacts: []directory.Contact{
			{
				Email: "ana.sousa@dns.pt", Name: "Ana Conceição Sousa",
				Phones:    []directory.Phone{{Number: "+351211234567", Emergency: true}, {Number: "+351217654321"}},
				Roles:     []directory.Role{{TLD: "pt", Role: directory.RoleSecurity}},
				Languages: []string{"pt", "en"}, TimeZone: "Europe/Lisbon", Always: true,
				Key: &directory.Key{
					Fingerprint: "AAAA1111BBBB2222CCCC3333DDDD4444EEEE5555", Algorithm: "ed25519",
					Created: "2024-01-10T09:00:00Z", Expires: "2027-01-10T09:00:00Z", Armored: fakeKey("ana"),
				},
				Confirmed: "2025-02-14T10:30:00Z",
			},
			{
				Email: "dmitry@cctld.ru", Name: "Дмитрий Иванов",
				Phones:    []directory.Phone{{Number: "+74957301234", Emergency: true}},
				Roles:     []directory.Role{{TLD: "xn--p1ai", Role: directory.RoleSecurity}},
				Languages: []string{"ru", "en"}, TimeZone: "Europe/Moscow", Always: true,
				Key: &directory.Key{
					Fingerprint: "1111222233334444555566667777888899990000", Algorithm: "rsa4096",
					Created: "2023-05-01T00:00:00Z", Armored: fakeKey("dmitry"),
				},
				Confirmed: "2025-01-20T08:00:00+03:00",
			},
			{
				Email: "joao@dns.pt", Name: "João Gonçalves",
				Phones:    []directory.Phone{{Number: "+351219999999"}},
				Roles:     []directory.Role{{TLD: "pt", Role: directory.RoleAdmin}},
				Languages: []string{}, Confirmed: "2024-11-02T16:00:00Z",
			},
			{
				Email: "noc@anycast.example", Name: "Anycast NOC",
				Phones: []directory.Phone{{Number: "+442071234567", Emergency: true}, {Number: "+442079876543"}},
				Roles: []directory.Role{
					{TLD: "pt", Role: directory.RoleAdmin},
					{TLD: "xn--p1ai", Role: directory.RoleSecurity},
				},
				Languages: []string{"en"}, TimeZone: "UTC", Always: true,
				Key: &directory.Key{
					Fingerprint: "FFFF0000EEEE1111DDDD2222CCCC3333BBBB4444", Algorithm: "ed25519",
					Created: "2024-06-01T00:00:00Z", Expires: "2026-06-01T00:00:00Z", Armored: fakeKey("noc"),
				},
				Confirmed: "2025-02-28T23:59:59Z",
			},
			{
				Email: "omar@cnnic.cn", Name: "عمر الفاروق",
				Phones:    []directory.Phone{{Number: "+861058813000"}},
				Roles:     []directory.Role{{TLD: "cn", Role: directory.RoleAdmin}},
				Languages: []string{"ar", "zh"}, TimeZone: "Asia/Shanghai",
				Confirmed: "2024-09-09T09:09:09Z",
			},
			{
				Email: "wang@cnnic.cn", Name: "王小明",
				Phones:    []directory.Phone{{Number: "+861058812000", Emergency: true}},
				Roles:     []directory.Role{{TLD: "cn", Role: directory.RoleSecurity}},
				Languages: []string{"zh"}, TimeZone: "Asia/Shanghai",
				Key: &directory.Key{
					Fingerprint: "5555666677778888999900001111222233334444", Algorithm: "ed25519",
					Created: "2022-01-01T00:00:00Z", Expires: "2024-12-31T00:00:00Z", Armored: strings.TrimSuffix(fakeKey("wang"), "\n"),
				},
				Confirmed: "2024-03-03T03:03:03Z",
			},
		},
	}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it); got:\n%s", name, got)
	}
}

func render(t *testing.T, format string, s *directory.Snapshot) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Render(&buf, format, s); err != nil {
		t.Fatalf("Render %s: %v", format, err)
	}
	return buf.Bytes()
}

func TestGolden(t *testing.T) {
	files := map[string]string{
		FormatText:  "directory.txt",
		FormatJSON:  "directory.json",
		FormatCSV:   "directory.csv",
		FormatVCard: "directory.vcf",
		FormatKeys:  "directory-keys.asc",
	}
	for _, f := range Formats {
		t.Run(f, func(t *testing.T) {
			got := render(t, f, testSnapshot())
			if again := render(t, f, testSnapshot()); !bytes.Equal(got, again) {
				t.Fatal("two renderings of the same snapshot differ")
			}
			if !utf8.Valid(got) {
				t.Error("output is not UTF-8")
			}
			if bytes.Contains(got, []byte("not in any export")) {
				t.Error("the directory's public key leaked into the export")
			}
			golden(t, files[f], got)
		})
	}
}

func TestRenderUnknownFormat(t *testing.T) {
	var buf bytes.Buffer
	err := Render(&buf, "xml", testSnapshot())
	if !errors.Is(err, ErrUnknownFormat) {
		t.Fatalf("err = %v, want ErrUnknownFormat", err)
	}
	for _, f := range Formats {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not list %s", err, f)
		}
	}
	if buf.Len() != 0 {
		t.Error("wrote output for an unknown format")
	}
}

func TestTextShape(t *testing.T) {
	text := string(render(t, FormatText, testSnapshot()))
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if strings.TrimRight(line, " \t") != line {
			t.Errorf("line %d has trailing space: %q", i+1, line)
		}
		if n := utf8.RuneCountInString(line); n > 100 {
			t.Errorf("line %d has %d columns", i+1, n)
		}
	}
	if strings.Contains(text, "\r") {
		t.Error("text has CR")
	}
	for _, want := range []string{
		"рф (xn--p1ai)  Coordination Center for TLD RU",
		"Country:     PT (Portugal)",
		"Status:      inactive",
		"Serial:      42",
		"Head:        9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		"Date:        2025-03-01 12:00:00 UTC",
		"Contents:    3 ccTLDs, 6 contacts, 4 keys",
		"Phones:      +351211234567 (emergency)",
		"Key:         AAAA 1111 BBBB 2222 CCCC 3333 DDDD 4444 EEEE 5555",
		"Key expires: 2024-12-31 (expired)",
		"Key expires: never",
		"Key:         no key",
		"Changed:     2025-01-20", // +03:00 shown as the UTC date
		"Directory key: 0123 4567 89AB CDEF 0123 4567 89AB CDEF 0123 4567",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q", want)
		}
	}
	// Members sorted by code, security contacts first.
	if !inOrder(text, "\ncn  ", "\npt  ", "\nрф (xn--p1ai)  ") {
		t.Error("members are not sorted by code")
	}
	pt := text[strings.Index(text, "\npt  "):strings.Index(text, "\nрф (xn--p1ai)  ")]
	if !inOrder(pt, "Ana Conceição Sousa", "Anycast NOC", "João Gonçalves") {
		t.Errorf("contacts of pt are not security first, then by name:\n%s", pt)
	}
	// The shared contact is shown under both ccTLDs with its role there.
	if strings.Count(text, "Anycast NOC <noc@anycast.example>") != 2 {
		t.Error("the contact of two ccTLDs is not shown under both")
	}
}

func inOrder(s string, subs ...string) bool {
	last := -1
	for _, sub := range subs {
		i := strings.Index(s, sub)
		if i <= last {
			return false
		}
		last = i
	}
	return true
}

func TestTextHostileName(t *testing.T) {
	s := testSnapshot()
	s.Contacts[0].Name = "Eve\n    Phones:      +1555\u202e"
	text := string(render(t, FormatText, s))
	if strings.Contains(text, "\n    Phones:      +1555") || strings.Contains(text, "\u202e") {
		t.Errorf("a name injected a line or a bidi override:\n%s", text)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	s := testSnapshot()
	data := render(t, FormatJSON, s)
	if !bytes.HasSuffix(data, []byte("}\n")) || !bytes.HasPrefix(data, []byte("{\n  \"format\": \"ccdir-directory\",\n  \"version\": 1,")) {
		t.Errorf("unexpected framing:\n%s", data)
	}
	if bytes.Contains(data, []byte("BEGIN PGP")) {
		t.Error("armored keys in the JSON")
	}
	e, err := ParseJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if e.Serial != 42 || e.Head != s.Head.Hash || e.Time != s.Time || e.Directory.KeyFingerprint != s.Info.KeyFingerprint {
		t.Errorf("header: %+v", e)
	}
	var tlds []string
	for _, m := range e.Members {
		tlds = append(tlds, m.TLD+"/"+m.Unicode)
	}
	if got := strings.Join(tlds, " "); got != "cn/cn pt/pt xn--p1ai/рф" {
		t.Errorf("members = %s", got)
	}
	ru := e.Members[2]
	if len(ru.Contacts) != 2 || ru.Contacts[0].Name != "Anycast NOC" || ru.Contacts[0].Role != "security" {
		t.Fatalf("рф contacts: %+v", ru.Contacts)
	}
	pt := e.Members[1]
	noc := pt.Contacts[1]
	if noc.Email != "noc@anycast.example" || noc.Role != "admin" || !noc.Always ||
		len(noc.Phones) != 2 || !noc.Phones[0].Emergency || noc.Phones[1].Emergency ||
		noc.Key == nil || noc.Key.Expires != "2026-06-01T00:00:00Z" {
		t.Errorf("shared contact under pt: %+v", noc)
	}
	if joao := pt.Contacts[2]; joao.Key != nil || joao.Languages == nil || joao.TimeZone != "" {
		t.Errorf("contact without key: %+v", joao)
	}
	// Writing what was read gives the same bytes.
	var again bytes.Buffer
	enc := NewExport(s)
	if enc.Members[0].Contacts[0].Name != e.Members[0].Contacts[0].Name {
		t.Error("NewExport and ParseJSON disagree")
	}
	if err := encodeExport(&again, e); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), data) {
		t.Errorf("re-encoding the parsed export differs:\n%s", again.Bytes())
	}
}

func TestParseJSONRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"other format":  `{"format":"something","version":1}`,
		"later version": `{"format":"ccdir-directory","version":2}`,
		"trailing data": `{"format":"ccdir-directory","version":1} {}`,
		"not json":      `format: ccdir-directory`,
		"empty":         ``,
	} {
		if _, err := ParseJSON(strings.NewReader(in)); !errors.Is(err, ErrNotExport) {
			t.Errorf("%s: err = %v, want ErrNotExport", name, err)
		}
	}
	big := `{"format":"ccdir-directory","version":1,"head":"` + strings.Repeat("a", MaxJSONBytes) + `"}`
	if _, err := ParseJSON(strings.NewReader(big)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversize: err = %v", err)
	}
}

func TestVCardParsesBack(t *testing.T) {
	s := testSnapshot()
	data := render(t, FormatVCard, s)
	for i, line := range strings.Split(strings.TrimSuffix(string(data), "\r\n"), "\r\n") {
		if len(line) > 75 {
			t.Errorf("line %d is %d octets", i+1, len(line))
		}
		if strings.Contains(line, "\n") {
			t.Errorf("line %d has a bare LF", i+1)
		}
		if !utf8.ValidString(line) {
			t.Errorf("line %d splits a UTF-8 sequence", i+1)
		}
	}
	dec := vcard.NewDecoder(bytes.NewReader(data))
	var cards []vcard.Card
	for {
		c, err := dec.Decode()
		if err != nil {
			if err == io.EOF {
				break
			}
			t.Fatal(err)
		}
		cards = append(cards, c)
	}
	if len(cards) != len(s.Contacts) {
		t.Fatalf("%d cards, want one per contact (%d)", len(cards), len(s.Contacts))
	}
	byEmail := map[string]vcard.Card{}
	for _, c := range cards {
		if v := c.Value(vcard.FieldVersion); v != "4.0" {
			t.Errorf("VERSION %q", v)
		}
		byEmail[c.Value(vcard.FieldEmail)] = c
	}
	uids := map[string]bool{}
	for _, want := range s.Contacts {
		c, ok := byEmail[want.Email]
		if !ok {
			t.Errorf("no card for %s", want.Email)
			continue
		}
		if fn := c.Value(vcard.FieldFormattedName); fn != want.Name {
			t.Errorf("FN %q, want %q", fn, want.Name)
		}
		if n := len(c[vcard.FieldEmail]); n != 1 {
			t.Errorf("%s: %d EMAIL", want.Email, n)
		}
		tels := c[vcard.FieldTelephone]
		if len(tels) != len(want.Phones) {
			t.Errorf("%s: %d TEL, want %d", want.Email, len(tels), len(want.Phones))
		}
		for i, tel := range tels {
			if tel.Value != "tel:"+want.Phones[i].Number || !tel.Params.HasType("voice") {
				t.Errorf("%s: TEL %+v", want.Email, tel)
			}
			if pref := tel.Params.Get(vcard.ParamPreferred) == "1"; pref != want.Phones[i].Emergency {
				t.Errorf("%s: TEL %s PREF=1 is %v", want.Email, tel.Value, pref)
			}
		}
		if got := len(c[vcard.FieldTitle]); got != len(want.Roles) {
			t.Errorf("%s: %d TITLE, want %d", want.Email, got, len(want.Roles))
		}
		key := c.Value(vcard.FieldKey)
		if want.Key == nil && key != "" {
			t.Errorf("%s: KEY without a key", want.Email)
		}
		// KEY is the fingerprint as a URI (RFC 6350 §6.8.1), as go-vcard reads it.
		if want.Key != nil {
			f := c.Get(vcard.FieldKey)
			if key != "openpgp4fpr:"+strings.ToUpper(want.Key.Fingerprint) || f.Params.Get(vcard.ParamValue) != "uri" {
				t.Errorf("%s: KEY %+v", want.Email, f)
			}
		}
		uid := c.Value(vcard.FieldUID)
		if !strings.HasPrefix(uid, "urn:uuid:") || uids[uid] {
			t.Errorf("%s: UID %q", want.Email, uid)
		}
		uids[uid] = true
	}
	noc := byEmail["noc@anycast.example"]
	if org := noc.Value(vcard.FieldOrganization); org != "Associação DNS.PT" {
		t.Errorf("ORG of the shared contact = %q, want the org of its first ccTLD", org)
	}
	if got := strings.Join(noc.Values(vcard.FieldTitle), " | "); got != "admin contact .pt | security contact .рф (xn--p1ai)" {
		t.Errorf("TITLE = %s", got)
	}
	if note := noc.Value(vcard.FieldNote); !strings.Contains(note, "24x7: yes") || !strings.Contains(note, "security contact .рф (xn--p1ai) (Coordination Center for TLD RU)") {
		t.Errorf("NOTE = %q", note)
	}
	ana := byEmail["ana.sousa@dns.pt"]
	if n := ana.Name(); n == nil || n.GivenName != "Ana Conceição" || n.FamilyName != "Sousa" {
		t.Errorf("N = %+v", n)
	}
	if rev := ana.Value(vcard.FieldRevision); rev != "20250214T103000Z" {
		t.Errorf("REV = %q", rev)
	}
	if got := strings.Join(ana.Values(vcard.FieldLanguage), ","); got != "pt,en" {
		t.Errorf("LANG = %s", got)
	}
	if n := byEmail["wang@cnnic.cn"].Name(); n == nil || n.FamilyName != "王小明" {
		t.Errorf("N of a name without space = %+v", n)
	}
	if !bytes.Contains(data, []byte("KEY;VALUE=uri:openpgp4fpr:")) || bytes.Contains(data, []byte("BEGIN PGP")) ||
		bytes.Contains(data, []byte("data:")) {
		t.Error("a KEY is not an openpgp4fpr: URI, or a key is embedded")
	}
}

func TestFoldVCard(t *testing.T) {
	long := "NOTE:" + strings.Repeat("é", 100) + "\r\n"
	var buf bytes.Buffer
	if err := foldVCard(&buf, []byte(long)); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\r\n"), "\r\n")
	if len(lines) < 3 {
		t.Fatalf("not folded: %q", buf.String())
	}
	var joined strings.Builder
	for i, l := range lines {
		if len(l) > 75 || !utf8.ValidString(l) {
			t.Errorf("line %d: %d octets, valid UTF-8 %v", i, len(l), utf8.ValidString(l))
		}
		if i > 0 {
			if l[0] != ' ' {
				t.Errorf("continuation line %d does not start with a space", i)
			}
			l = l[1:]
		}
		joined.WriteString(l)
	}
	if joined.String()+"\r\n" != long {
		t.Error("unfolding does not give the line back")
	}
}

func TestKeys(t *testing.T) {
	s := testSnapshot()
	// A team key shared by two contacts is written once.
	shared := *s.Contacts[1].Key
	s.Contacts[2].Key = &shared
	out := string(render(t, FormatKeys, s))
	if n := strings.Count(out, "-----BEGIN PGP PUBLIC KEY BLOCK-----"); n != 4 {
		t.Errorf("%d key blocks, want 4", n)
	}
	if !inOrder(out, "fakeana", "fakedmitry", "fakenoc", "fakewang") {
		t.Error("keys are not sorted by email")
	}
	if !strings.HasSuffix(out, "-----END PGP PUBLIC KEY BLOCK-----\n") {
		t.Error("a key without a final newline was not given one")
	}
	if strings.Contains(out, "\n\n\n") || strings.Contains(out, "BLOCK-----\n-----BEGIN") {
		t.Error("blocks are not separated by exactly one empty line")
	}
	empty := testSnapshot()
	for i := range empty.Contacts {
		empty.Contacts[i].Key = nil
	}
	if out := render(t, FormatKeys, empty); len(out) != 0 {
		t.Errorf("keys of a directory without keys: %q", out)
	}
}

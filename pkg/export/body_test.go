package export

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ccdir/ccdir/directory"
)

func writeBody(t *testing.T, s *directory.Snapshot, opts BodyOptions) string {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteBody(&buf, s, opts); err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	if err := WriteBody(&again, s, opts); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Fatal("two bodies of the same input differ")
	}
	checkBodyShape(t, buf.String())
	return buf.String()
}

// checkBodyShape checks what the MIME layer relies on.
func checkBodyShape(t *testing.T, body string) {
	t.Helper()
	if !utf8.ValidString(body) {
		t.Error("body is not UTF-8")
	}
	if strings.Contains(body, "\r") {
		t.Error("body has CR")
	}
	if !strings.HasSuffix(body, ".\n") {
		t.Error("body does not end with the footer and a newline")
	}
	for i, line := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		if strings.TrimRight(line, " \t") != line {
			t.Errorf("line %d has trailing space: %q", i+1, line)
		}
		if n := utf8.RuneCountInString(line); n > 100 {
			t.Errorf("line %d has %d columns: %q", i+1, n, line)
		}
		if strings.HasPrefix(line, "From ") {
			t.Errorf("line %d starts with From: %q", i+1, line)
		}
	}
}

func bodyOptions() BodyOptions {
	prev, cur := prevSnapshot(), curSnapshot()
	return BodyOptions{
		Now:        digestNow,
		PrevSerial: prev.Head.Serial,
		PrevHead:   prev.Head.Hash,
		Changes:    Diff(prev, cur, digestNow, KeyCheck{Usable: testUsable(digestNow)}),
		Keys:       KeyCheck{Usable: testUsable(digestNow)},
	}
}

func contactByEmail(t *testing.T, s *directory.Snapshot, email string) *directory.Contact {
	t.Helper()
	for i := range s.Contacts {
		if s.Contacts[i].Email == email {
			return &s.Contacts[i]
		}
	}
	t.Fatalf("no contact %s", email)
	return nil
}

func TestBodyGolden(t *testing.T) {
	cur := curSnapshot()
	body := writeBody(t, cur, bodyOptions())
	golden(t, "body.txt", []byte(body))

	// The directory part is exactly what WriteText writes.
	text := string(render(t, FormatText, cur))
	dir := text[strings.Index(text, "\n\n"+rule+"\n"):strings.LastIndex(text, "\n\n"+rule+"\n")]
	if !strings.Contains(body, dir+"\n\n"+rule+"\n") {
		t.Error("the directory in the body differs from WriteText's")
	}
	for _, want := range []string{
		"Digest of:   2025-03-02 08:00:00 UTC",
		"Serial:      57",
		"Head:        2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
		"Last change: 2025-03-02 07:30:00 UTC",
		"Contents:    4 ccTLDs, 8 contacts, 4 with a usable key",
		"Changes since the last digest (serial 42 → 57)",
		"\nde  DENIC eG\n  - member removed\n",
		"\nbr  Núcleo de Informação e Coordenação do Ponto BR\n  - member added\n",
		"send a signed mail with HELP to\ndirectory@ccdir.example",
		"Directory key: 0123 4567 89AB CDEF 0123 4567 89AB CDEF 0123 4567",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q", want)
		}
	}
	if strings.Contains(body, "Note for") {
		t.Error("a body without recipient has a note")
	}
	if !inOrder(body, "Changes since", "\nbr  ", "\ncn  ", "\nde  ", "\npt  ", "\nрф (xn--p1ai)  ",
		"\n"+rule+"\nbr  ", "\n"+rule+"\nрф (xn--p1ai)  ", "Directory key:") {
		t.Error("sections are out of order")
	}
}

func TestBodyRecipientNote(t *testing.T) {
	cur := curSnapshot()
	opts := bodyOptions()
	opts.Recipient = contactByEmail(t, cur, "maria@nic.br")
	body := writeBody(t, cur, opts)
	golden(t, "body-note.txt", []byte(body))
	note := KeyNote(opts.Recipient, opts.Now, 0, opts.Keys)
	if !strings.Contains(body, "\n\n"+note+"\n\nDigest of:") {
		t.Errorf("the note is not at the top of the body:\n%s", body)
	}
	if !strings.Contains(note, "expires on 2025-04-15") || !strings.Contains(note, "BBBB 2222 CCCC 3333 DDDD 4444 EEEE 5555 FFFF 6666") {
		t.Errorf("note: %s", note)
	}

	// A recipient without a note gets the body of everyone.
	opts.Recipient = contactByEmail(t, cur, "ana.sousa@dns.pt")
	if got, want := writeBody(t, cur, opts), writeBody(t, cur, bodyOptions()); got != want {
		t.Error("the body depends on a recipient who has no note")
	}
	// A shorter notice period drops the note.
	opts.Recipient = contactByEmail(t, cur, "maria@nic.br")
	opts.KeyNoteDays = 30
	if strings.Contains(writeBody(t, cur, opts), "Note for") {
		t.Error("a key expiring in 44 days is noted with KeyNoteDays 30")
	}
}

func TestBodyFirstDigest(t *testing.T) {
	cur := curSnapshot()
	body := writeBody(t, cur, BodyOptions{Now: digestNow, Changes: []Change{{Kind: ChangeMemberAdded, TLD: "pt"}}})
	golden(t, "body-first.txt", []byte(body))
	if !strings.Contains(body, "this is the first digest") || strings.Contains(body, "member added") {
		t.Errorf("first digest:\n%s", body)
	}
	// Without usable, keys count as usable until they expire: only wang's
	// key has.
	if !strings.Contains(body, "8 contacts, 5 with a usable key") {
		t.Error("usable keys are not counted by expiry")
	}
}

func TestBodyNoChanges(t *testing.T) {
	cur := curSnapshot()
	body := writeBody(t, cur, BodyOptions{Now: digestNow, PrevSerial: 57})
	if !strings.Contains(body, "Changes since the last digest (serial 57 → 57)\n"+strings.Repeat("-", 46)+"\nNo changes.\n") {
		t.Errorf("no changes:\n%s", body)
	}
}

func TestBodyFromLines(t *testing.T) {
	s := curSnapshot()
	s.Info.Name = "From the TLD-OPS secretariat"
	c := contactByEmail(t, s, "sergey@cctld.ru")
	opts := bodyOptions()
	opts.Recipient = c
	// An error text that puts "From " at the start of a wrapped note line.
	opts.Keys.Usable = func(c *directory.Contact) error {
		if c.Email == "sergey@cctld.ru" {
			return errors.New("key revoked by its owner, who wrote to the secretariat: From now on use my new key")
		}
		return nil
	}
	body := writeBody(t, s, opts) // checkBodyShape refuses "From " lines
	golden(t, "body-from.txt", []byte(body))
	if !strings.HasPrefix(body, " From the TLD-OPS secretariat\n") {
		t.Errorf("the title was not escaped:\n%s", body)
	}
	if !strings.Contains(body, "\n From now on") {
		t.Errorf("the note line was not escaped:\n%s", body)
	}
	// WriteText escapes as well.
	if text := string(render(t, FormatText, s)); !strings.HasPrefix(text, " From the") {
		t.Errorf("text title: %q", text[:40])
	}
}

func TestBodyHostileChange(t *testing.T) {
	s := curSnapshot()
	opts := BodyOptions{Now: digestNow, PrevSerial: 1, Changes: []Change{{
		Kind: ChangeName, TLD: "pt", Email: "ana@dns.pt", Name: "Eve\nFrom x",
		Detail: "Ana → Eve\u202e\n    Phones:      +1555",
	}}}
	body := writeBody(t, s, opts)
	if strings.Contains(body, "\u202e") || strings.Contains(body, "\n    Phones:      +1555") {
		t.Errorf("a change injected a line or a bidi override:\n%s", body)
	}
}

func TestWrap(t *testing.T) {
	long := "Ana <ana@dns.pt>: key rotated: AAAA 1111 BBBB 2222 CCCC 3333 DDDD 4444 EEEE 5555 → BBBB 1111 BBBB 2222 CCCC 3333 DDDD 4444 EEEE 5555 (expires 2028-01-01)"
	got := wrap("  - ", "      ", long, 100)
	want := []string{
		"  - Ana <ana@dns.pt>: key rotated: AAAA 1111 BBBB 2222 CCCC 3333 DDDD 4444 EEEE 5555",
		"      → BBBB 1111 BBBB 2222 CCCC 3333 DDDD 4444 EEEE 5555 (expires 2028-01-01)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("wrap:\n%q\nwant\n%q", got, want)
	}
	if got := wrap("- ", "  ", "short → text", 100); !slices.Equal(got, []string{"- short → text"}) {
		t.Errorf("short line: %q", got)
	}
	words := wrap("", "  ", strings.Repeat("word ", 30)+strings.Repeat("x", 120), 40)
	for i, l := range words[:len(words)-1] {
		if utf8.RuneCountInString(l) > 40 || strings.HasSuffix(l, " ") {
			t.Errorf("line %d: %q", i, l)
		}
	}
	if last := words[len(words)-1]; last != "  "+strings.Repeat("x", 120) {
		t.Errorf("a long word was broken: %q", last)
	}
}

func TestKeyNote(t *testing.T) {
	base := func() *directory.Contact {
		return &directory.Contact{
			Email: "ana@dns.pt", Name: "Ana Conceição Sousa",
			Key: &directory.Key{Fingerprint: "AAAA1111BBBB2222CCCC3333DDDD4444EEEE5555", Expires: "2025-04-01T00:00:00Z"},
		}
	}
	revoked := func(*directory.Contact) error { return errors.New("key revoked") }
	tests := []struct {
		name   string
		edit   func(*directory.Contact)
		days   int
		usable func(*directory.Contact) error
		want   string // "" for no note, else a part of it
	}{
		{name: "nil contact", edit: nil, want: ""},
		{name: "expires in 30 days", want: "expires on 2025-04-01"},
		{name: "expires in 30 days, warned 20 days ahead", days: 20, want: ""},
		{name: "expires on the last warned day", days: 30, edit: func(c *directory.Contact) { c.Key.Expires = "2025-04-01T08:00:00Z" }, want: "expires on 2025-04-01"},
		{name: "expires far away", edit: func(c *directory.Contact) { c.Key.Expires = "2030-01-01T00:00:00Z" }, want: ""},
		{name: "never expires", edit: func(c *directory.Contact) { c.Key.Expires = "" }, want: ""},
		{name: "expired", edit: func(c *directory.Contact) { c.Key.Expires = "2025-01-01T00:00:00Z" }, want: "expired on 2025-01-01"},
		{name: "revoked", usable: revoked, edit: func(c *directory.Contact) { c.Key.Expires = "" }, want: "cannot be used: key revoked"},
		{name: "no key", edit: func(c *directory.Contact) { c.Key = nil }, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c *directory.Contact
			if tt.name != "nil contact" {
				c = base()
				if tt.edit != nil {
					tt.edit(c)
				}
			}
			got := KeyNote(c, digestNow, tt.days, KeyCheck{Usable: tt.usable})
			if again := KeyNote(c, digestNow, tt.days, KeyCheck{Usable: tt.usable}); again != got {
				t.Fatal("KeyNote is not a pure function")
			}
			if tt.want == "" {
				if got != "" {
					t.Errorf("note: %q", got)
				}
				return
			}
			if !strings.Contains(strings.ReplaceAll(got, "\n", " "), tt.want) {
				t.Errorf("note lacks %q:\n%s", tt.want, got)
			}
			if !strings.HasPrefix(got, "Note for Ana Conceição Sousa <ana@dns.pt>:\nYour OpenPGP key AAAA 1111 BBBB") {
				t.Errorf("note is not addressed to its contact:\n%s", got)
			}
			for _, l := range strings.Split(got, "\n") {
				if utf8.RuneCountInString(l) > 72 || strings.TrimSpace(l) != l {
					t.Errorf("note line %q", l)
				}
			}
		})
	}
}

// TestBodyReachability: the operational section of last confirmations
// comes after the directory, under a heading that says it is not part of
// the signed directory, and leaves the directory part as WriteText lays
// it out.
func TestBodyReachability(t *testing.T) {
	cur := curSnapshot()
	opts := bodyOptions()
	opts.Reachability = []Reach{
		{Name: "Maria\x1b[31m Souza", Email: "maria@nic.br", Text: "last confirmed: 2025-03-01 08:00 UTC (1 day ago)"},
		{Name: "Erin Weber", Email: "erin@denic.de", Text: "last confirmed: never (has not answered a reachability check)"},
	}
	body := writeBody(t, cur, opts)
	plain := writeBody(t, cur, bodyOptions())
	for _, want := range []string{
		"\n" + rule + "\nReachability (operational, not part of the signed directory)\n",
		"\n  Maria\uFFFD[31m Souza <maria@nic.br>: last confirmed: 2025-03-01 08:00 UTC (1 day ago)\n",
		"\n  Erin Weber <erin@denic.de>: last confirmed: never (has not answered a reachability check)\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
	if !inOrder(body, "\nрф (xn--p1ai)  ", "\nReachability (operational", "maria@nic.br>: last", "erin@denic.de>: last", "To query the directory") {
		t.Error("the reachability section is not between the directory and the footer")
	}
	// Everything before the section is the body without it.
	cut := strings.Index(body, "\n"+rule+"\nReachability")
	if cut < 0 || !strings.HasPrefix(plain, body[:cut]) {
		t.Error("the section changed the body before it")
	}
	if strings.Contains(plain, "Reachability") {
		t.Error("a body without reachability lines has the section")
	}
}

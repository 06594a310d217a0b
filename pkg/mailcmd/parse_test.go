package mailcmd

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ccdir/ccdir/pkg/inbound"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name   string
		text   string
		verbs  []string
		dry    bool
		errors []string // substrings, one per expected error
	}{
		{name: "queries", text: "help\nList\nSHOW .PT\nsearch dns pt\nkey alice@DNS.pt\nCALL br\ndigest\nwhoami\n",
			verbs: []string{"HELP", "LIST", "SHOW", "SEARCH", "KEY", "CALL", "DIGEST", "WHOAMI"}},
		{name: "leading blank lines and trailing text", text: "\n\n  \nHELP\nLIST\n\nthanks, alice\nFOO\n",
			verbs: []string{"HELP", "LIST"}},
		{name: "signature ends", text: "HELP\n-- \nAlice\nFOO\n", verbs: []string{"HELP"}},
		{name: "quoted reply ends", text: "WHOAMI\n> FOO\n", verbs: []string{"WHOAMI"}},
		{name: "directory binding skipped", text: "DIRECTORY ccdir@directory.example\nHELP\n", verbs: []string{"HELP"}},
		{name: "dry run", text: "dry-run\nSET NAME Alice\n", verbs: []string{"SET NAME"}, dry: true},
		{name: "dry run not first", text: "HELP\nDRY-RUN\n", verbs: []string{"HELP"}, errors: []string{`line 2: "DRY-RUN": DRY-RUN must be the first command`}},
		{name: "set fields", text: "SET NAME Alice  Silva\nset phone +351 21 314 1516, 00351 21 314 1517\nSET EMERGENCY-PHONE none\nSET languages pt, en\nSET TIMEZONE europe/lisbon\nSET 24x7 YES\n",
			verbs:  []string{"SET NAME", "SET PHONE", "SET EMERGENCY-PHONE", "SET LANGUAGES", "SET 24X7"},
			errors: []string{"line 5"}}, // time zones are case-sensitive
		{name: "unknown verb", text: "HELP\nFROB x\nLIST\n", verbs: []string{"HELP", "LIST"}, errors: []string{`line 2: "FROB x": unknown command FROB`}},
		{name: "bad arguments", text: "SHOW zz\nKEY nobody\nSET COLOUR blue\nSET PHONE 12\nREMOVE-CONTACT pt\nADD-CONTACT pt a@b.pt Alice\nHELP me\n",
			errors: []string{"line 1", "line 2", "line 3", "line 4", "line 5", "line 6", "line 7: \"HELP me\": HELP takes no argument"}},
		{name: "admin commands", text: "ADD-CONTACT pt new@dns.pt +351213141599 New Person\nREMOVE-CONTACT PT noc@dns.pt\n",
			verbs: []string{"ADD-CONTACT", "REMOVE-CONTACT"}},
		{name: "key by fingerprint", text: "KEY 0x" + strings.Repeat("ab", 20) + "\nKEY " + strings.Repeat("ABCD ", 10) + "\n", verbs: []string{"KEY", "KEY"}},
		{name: "too many", text: strings.Repeat("HELP\n", MaxCommands+1), errors: []string{"more than 50 commands"}},
		{name: "long line", text: "SEARCH " + strings.Repeat("x", MaxLineBytes) + "\n", errors: []string{"longer than"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, errs := Parse(tt.text)
			var got []string
			for _, c := range s.Commands {
				got = append(got, c.Verb)
			}
			if tt.verbs != nil && !reflect.DeepEqual(got, tt.verbs) {
				t.Errorf("verbs = %v, want %v", got, tt.verbs)
			}
			if s.DryRun != tt.dry {
				t.Errorf("DryRun = %v", s.DryRun)
			}
			if len(errs) != len(tt.errors) {
				t.Fatalf("errors = %v, want %d", errs, len(tt.errors))
			}
			for i, e := range errs {
				if !strings.Contains(e.Error(), tt.errors[i]) {
					t.Errorf("error %d = %q, want %q in it", i, e.Error(), tt.errors[i])
				}
			}
		})
	}
}

func TestParseValues(t *testing.T) {
	s, errs := Parse("SET PHONE +351 21 314 1516, 00351 21 314 1517\nSET LANGUAGES pt_br en\nSHOW .PT\nADD-CONTACT pt New@DNS.pt 00351213141599 New  Person\n")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	c := s.Commands
	if !reflect.DeepEqual(c[0].Phones, []string{"+351213141516", "+351213141517"}) {
		t.Errorf("phones %v", c[0].Phones)
	}
	if !reflect.DeepEqual(c[1].Languages, []string{"pt-BR", "en"}) {
		t.Errorf("languages %v", c[1].Languages)
	}
	if c[2].TLD != "pt" || c[2].Line != 3 {
		t.Errorf("show %+v", c[2])
	}
	if c[3].Email != "new@dns.pt" || c[3].Name != "New Person" || c[3].Phones[0] != "+351213141599" {
		t.Errorf("add %+v", c[3])
	}
	if got := s.String(); !strings.Contains(got, "ADD-CONTACT pt new@dns.pt +351213141599 New Person\n") {
		t.Errorf("String() = %q", got)
	}
}

func TestParseMaxCommands(t *testing.T) {
	s, errs := Parse(strings.Repeat("HELP\n", MaxCommands))
	if len(errs) != 0 || len(s.Commands) != MaxCommands {
		t.Fatalf("%d commands, errors %v", len(s.Commands), errs)
	}
	// DIRECTORY lines do not count.
	s, errs = Parse("DIRECTORY " + dirAddress + "\n" + strings.Repeat("HELP\n", MaxCommands))
	if len(errs) != 0 || len(s.Commands) != MaxCommands {
		t.Fatalf("%d commands, errors %v", len(s.Commands), errs)
	}
	_, errs = Parse(strings.Repeat("HELP\n", MaxCommands+1))
	if len(errs) != 1 || errs[0].Line != MaxCommands+1 {
		t.Fatalf("errors %v", errs)
	}
	// A 2,000-line mail is read only up to the limit.
	_, errs = Parse(strings.Repeat("FROB\n", 2000))
	if len(errs) != MaxCommands+1 {
		t.Fatalf("%d errors", len(errs))
	}
}

// The DIRECTORY lines Parse reads are the binding inbound checked: the
// same scanner decides where the block ends, so a DIRECTORY line after a
// quoted line, a signature delimiter or a blank line binds nothing and is
// no command line either.
func TestParseDirectoriesAreTheBinding(t *testing.T) {
	for _, text := range []string{
		"SHOW pt\n> SHOW de\nDIRECTORY " + dirAddress + "\n",
		"SHOW pt\n-- \nDIRECTORY " + dirAddress + "\n",
		"SHOW pt\n\nDIRECTORY " + dirAddress + "\n",
	} {
		s, _ := Parse(text)
		if b := inbound.ScanBlock(text); len(s.Directories) != 0 || len(b.Directories) != 0 {
			t.Errorf("%q: Parse read DIRECTORY %q, inbound %q; want none", text, s.Directories, b.Directories)
		}
	}
	// Past the cap of commands, a DIRECTORY line still binds the mail (so
	// its sender is told there were too many commands), in both readings.
	text := strings.Repeat("HELP\n", MaxCommands+1) + "DIRECTORY " + dirAddress + "\n"
	if s, errs := Parse(text); len(errs) != 1 || !strings.Contains(errs[0].Msg, "more than") ||
		!slices.Equal(s.Directories, []string{dirAddress}) || !slices.Equal(inbound.ScanBlock(text).Directories, s.Directories) {
		t.Errorf("past the cap: Parse read DIRECTORY %q (%v), inbound %q", s.Directories, errs, inbound.ScanBlock(text).Directories)
	}
	text = "directory " + dirAddress + "\nSHOW pt\n> DIRECTORY other@example.net\n"
	s, errs := Parse(text)
	if b := inbound.ScanBlock(text); len(errs) != 0 || !slices.Equal(s.Directories, []string{dirAddress}) || !slices.Equal(b.Directories, s.Directories) {
		t.Errorf("%q: Parse read DIRECTORY %q (%v), inbound %q", text, s.Directories, errs, b.Directories)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"HELP\n", "DRY-RUN\nSET NAME Alice\n", "\n\nSHOW pt\n-- \nx", "KEY alice@dns.pt\n> q\n",
		"SET PHONE +351 21 314 1516, +351213141517\n", "ADD-CONTACT pt a@b.pt +351213141599 A B\n",
		"SET LANGUAGES pt, en\nSET TIMEZONE Europe/Lisbon\nSET 24X7 yes\n", "SEARCH dns\r\nCALL рф\r\n",
		"DIRECTORY x@y\nREMOVE-CONTACT pt a@b.pt\nKEY-ROTATE\n", strings.Repeat("LIST\n", 60), "SET NAME \u202eevil\n",
		"SET EMAIL Ana@DNS.pt\nVETO chg-ab2cd3ef4g\nCONFIRM chg-ab2cd3ef4g " + strings.Repeat("x", 32) + "\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		s1, e1 := Parse(text)
		s2, e2 := Parse(text)
		if !reflect.DeepEqual(s1, s2) || fmt.Sprint(e1) != fmt.Sprint(e2) {
			t.Fatal("Parse is not stable")
		}
		if len(s1.Commands) > MaxCommands {
			t.Fatalf("%d commands", len(s1.Commands))
		}
		if b := inbound.ScanBlock(text); !slices.Equal(s1.Directories, b.Directories) {
			t.Fatalf("Parse read DIRECTORY %q, inbound's binding check %q", s1.Directories, b.Directories)
		}
		for _, e := range e1 {
			if strings.ContainsAny(e.Error(), "\r\n") {
				t.Fatalf("error with a line break: %q", e.Error())
			}
		}
		if len(e1) > 0 {
			return
		}
		// The canonical form reads back as the same commands.
		s3, e3 := Parse(s1.String())
		if len(e3) > 0 {
			t.Fatalf("canonical form %q does not parse: %v", s1.String(), e3)
		}
		if len(s3.Commands) != len(s1.Commands) || s3.DryRun != s1.DryRun {
			t.Fatalf("canonical form %q: %d commands, want %d", s1.String(), len(s3.Commands), len(s1.Commands))
		}
		for i := range s1.Commands {
			a, b := s1.Commands[i], s3.Commands[i]
			a.Line, a.Text, b.Line, b.Text = 0, "", 0, ""
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("command %d: %+v reads back as %+v", i, a, b)
			}
		}
	})
}

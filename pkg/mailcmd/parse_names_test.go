package mailcmd

import (
	"strings"
	"testing"
)

// Names given by mail (SET NAME, ADD-CONTACT) go through the same
// validation as the CLI's: invisible characters are refused, and the
// error names the character escaped.
func TestParseInvisibleNames(t *testing.T) {
	s, errs := Parse("SET NAME Ana\u200bSousa\nADD-CONTACT pt new@dns.pt +351213141599 New\u200fPerson\nSET NAME Jose\u0301\n")
	if len(errs) != 2 {
		t.Fatalf("errors = %v, want 2", errs)
	}
	for i, want := range []string{
		`line 1: `, `invalid name "Ana\u200bSousa": contains an invisible character (U+200B)`,
		`line 2: `, `invalid name "New\u200fPerson": contains a bidirectional control character`,
	} {
		if got := errs[i/2].Error(); !strings.Contains(got, want) {
			t.Errorf("error %d = %q, want %q in it", i/2, got, want)
		}
	}
	if len(s.Commands) != 1 || s.Commands[0].Name != "José" {
		t.Errorf("commands = %+v, want SET NAME José (NFC)", s.Commands)
	}
}

// HELP says that the zero-width joiner and non-joiner are refused in a
// name, and what to do instead.
func TestHelpSaysZeroWidthJoinersAreRefused(t *testing.T) {
	mustContain(t, strings.Join(strings.Fields(helpText(dirAddress, "", DefaultChangeDelay)), " "),
		"the zero-width joiner and non-joiner (U+200D, U+200C) of Persian or Indic names too: leave them out, or write the name in Latin letters")
}

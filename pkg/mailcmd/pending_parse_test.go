package mailcmd

import (
	"strings"
	"testing"
)

// SET EMAIL, VETO and CONFIRM: their arguments, their canonical form,
// and what is refused as malformed.
func TestParsePendingCommands(t *testing.T) {
	tok := "aB3-_" + strings.Repeat("z", 27)
	s, errs := Parse("set email Ana.Silva@DNS.pt\nveto chg-ab2cd3ef4g\nCONFIRM chg-ab2cd3ef4g " + tok + "\n")
	if len(errs) != 0 || len(s.Commands) != 3 {
		t.Fatalf("Parse: %+v %v", s, errs)
	}
	c := s.Commands
	if c[0].Verb != VerbSetEmail || c[0].Email != "ana.silva@dns.pt" || c[0].String() != "SET EMAIL ana.silva@dns.pt" {
		t.Errorf("SET EMAIL: %+v", c[0])
	}
	if c[1].Verb != VerbVeto || c[1].Change != "chg-ab2cd3ef4g" || c[1].String() != "VETO chg-ab2cd3ef4g" {
		t.Errorf("VETO: %+v", c[1])
	}
	if c[2].Verb != VerbConfirm || c[2].Change != "chg-ab2cd3ef4g" || c[2].Token != tok || c[2].String() != "CONFIRM chg-ab2cd3ef4g "+tok {
		t.Errorf("CONFIRM: %+v", c[2])
	}
	for _, tc := range []struct{ line, want string }{
		{"SET EMAIL", "SET EMAIL takes a value"},
		{"SET EMAIL not-an-address", "email"},
		{"SET EMAIL a@b.pt c@d.pt", "email"},
		{"VETO", "VETO takes the id of a pending change"},
		{"VETO 12345", "VETO takes the id of a pending change"},
		{"VETO chg-ab2cd3ef4g chg-ab2cd3ef4h", "VETO takes the id of a pending change"},
		{"VETO chg-ab/12cd", "VETO takes the id of a pending change"},
		{"VETO chg-" + strings.Repeat("a", 40), "VETO takes the id of a pending change"},
		{"CONFIRM chg-ab2cd3ef4g", "CONFIRM takes the id of a pending key change and its token"},
		{"CONFIRM " + tok, "CONFIRM takes the id"},
		{"CONFIRM chg-ab2cd3ef4g short", "CONFIRM takes the id"},
		{"CONFIRM chg-ab2cd3ef4g " + tok + " more", "CONFIRM takes the id"},
	} {
		if _, errs := Parse(tc.line); len(errs) != 1 || !strings.Contains(errs[0].Msg, tc.want) {
			t.Errorf("Parse(%q): %v, want %q", tc.line, errs, tc.want)
		}
	}
	if !(&Command{Verb: VerbSetEmail}).Changes() {
		t.Error("SET EMAIL does not count as a change")
	}
}

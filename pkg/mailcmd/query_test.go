package mailcmd

import (
	"strings"
	"testing"
)

// TestWhoamiChanged: WHOAMI labels the signed entry's Confirmed field
// (the time of its last ledger change) "Changed", so it is not read as
// the last answer to a reachability check.
func TestWhoamiChanged(t *testing.T) {
	f := newFixture(t)
	f.handle(f.accepted("bob@dns.pt", "WHOAMI\n"))
	r := f.reply("bob@dns.pt")
	mustContain(t, r.text, "\nChanged:     20")
	if strings.Contains(r.text, "Confirmed:") {
		t.Errorf("WHOAMI still labels the last change Confirmed:\n%s", r.text)
	}
}

package mailcmd

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Pending changes asked for by mail count against commands.changes_per_day
// with the contact's ledger entries: each sends notices, one to an
// address outside the directory for SET EMAIL. Rounds of SET EMAIL and
// VETO stop at the limit; the VETO of a waiting change is never refused
// for it; the next day the contact may ask again.
func TestPendingPerDay(t *testing.T) {
	f := newFixture(t)
	f.h.Config.ChangesPerDay = 4
	if res := f.handle(f.accepted("alice@dns.pt", "SET NAME Alice Costa\n")); res.Failed {
		t.Fatal(res.Results[0].Err)
	}
	for i := range 3 {
		to := fmt.Sprintf("victim%d@elsewhere.example", i)
		res := f.handle(f.accepted("alice@dns.pt", "SET EMAIL "+to+"\n"))
		if res.Failed || len(res.Pending) != 1 {
			t.Fatalf("round %d: %+v %v", i, res, res.Results[0].Err)
		}
		if res = f.handle(f.accepted("alice@dns.pt", "VETO "+res.Pending[0]+"\n")); res.Failed {
			t.Fatalf("veto %d: %v", i, res.Results[0].Err)
		}
		f.advance(time.Minute)
	}
	want := "FAILED: not done: at most 4 changes a day by mail for one contact (pending changes included), reached in the last 24 hours"
	f.refused("alice@dns.pt", "SET EMAIL victim9@elsewhere.example\n", want)
	if n := len(f.bodies(KindNotify, "victim9@elsewhere.example")); n != 0 {
		t.Fatalf("%d notices to victim9", n)
	}
	nk := f.newKey("alice@dns.pt")
	f.refused("alice@dns.pt", "KEY-ROTATE\n", want, keyPart(t, nk.Public()))
	f.refused("alice@dns.pt", "SET NAME Alice Silva\n", want)

	// A VETO still goes through: Bob's change, vetoed by Bob at his limit.
	f.h.Config.ChangesPerDay = 1
	res := f.handle(f.accepted("bob@dns.pt", "SET EMAIL bob.new@dns.pt\n"))
	if res.Failed || len(res.Pending) != 1 {
		t.Fatalf("%+v", res)
	}
	if res := f.handle(f.accepted("bob@dns.pt", "VETO "+res.Pending[0]+"\n")); res.Failed {
		t.Fatalf("veto at the limit: %v", res.Results[0].Err)
	}

	// A day later Alice may ask again.
	f.h.Config.ChangesPerDay = 4
	f.advance(24 * time.Hour)
	if res := f.handle(f.accepted("alice@dns.pt", "SET EMAIL alice.new@dns.pt\n")); res.Failed || !strings.HasPrefix(res.Results[0].Text, "pending:") {
		t.Fatalf("%+v %v", res, res.Results[0].Err)
	}
}

package mailcmd

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestChangesPerDay: the reply limit never stopped changes (25 toggles
// gave 50 entries); the change limit does. Past Config.ChangesPerDay
// entries in 24 hours, a change is refused, the sender is told in an
// encrypted reply, and nothing of the mail is written; queries still
// run; a day later changes are taken again.
func TestChangesPerDay(t *testing.T) {
	f := newFixture(t)
	f.h.Config.RepliesPerHour = 1000
	start := f.serial()
	for i := range 25 {
		for _, v := range []string{"yes", "no"} {
			f.handle(f.accepted("alice@dns.pt", "SET 24X7 "+v+"\nSET NAME Alice "+strings.Repeat("a", i+1)+"\n"))
			f.advance(time.Minute)
		}
	}
	if got := f.serial() - start; got != DefaultChangesPerDay {
		t.Fatalf("50 mails of 2 changes each made %d entries, want %d", got, DefaultChangesPerDay)
	}
	before := f.serial()
	res := f.handle(f.accepted("alice@dns.pt", "SET NAME Alice Again\nWHOAMI\n"))
	if !res.Failed || len(res.Entries) != 0 || f.serial() != before {
		t.Fatalf("a change past the limit: %+v", res)
	}
	if !res.Replied {
		t.Fatal("the refusal was not answered")
	}
	mustContain(t, f.reply("alice@dns.pt").text, "at most 10 changes a day by mail for one contact")
	// The limit is per contact: bob still changes his entry.
	if res := f.handle(f.accepted("bob@dns.pt", "SET 24X7 yes\n")); res.Failed || len(res.Entries) != 1 {
		t.Fatalf("another contact: %+v", res)
	}
	// Queries are not changes.
	if res := f.handle(f.accepted("alice@dns.pt", "WHOAMI\n")); res.Failed {
		t.Fatalf("a query: %+v", res)
	}
	// A day later the window has moved on.
	f.advance(24 * time.Hour)
	if res := f.handle(f.accepted("alice@dns.pt", "SET NAME Alice Later\n")); res.Failed || len(res.Entries) != 1 {
		t.Fatalf("a day later: %+v", res)
	}
}

// TestMaxEvidence: a change is kept with its mail's signed content as
// evidence, bounded: a mail whose evidence is larger than
// Config.MaxEvidence changes nothing, and its sender is told why.
func TestMaxEvidence(t *testing.T) {
	f := newFixture(t)
	f.h.Config.MaxEvidence = 4096
	a := f.accepted("alice@dns.pt", "SET NAME Alice Big\n")
	a.Evidence = bytes.Repeat([]byte("x"), 4097)
	before := f.serial()
	res := f.handle(a)
	if !res.Failed || f.serial() != before {
		t.Fatalf("an oversized change: %+v", res)
	}
	mustContain(t, f.reply("alice@dns.pt").text, "at most 4096 bytes, and this one's is 4097 bytes")
	a = f.accepted("alice@dns.pt", "SET NAME Alice Small\n")
	if res := f.handle(a); res.Failed || len(res.Entries) != 1 || !bytes.Equal(res.Entries[0].Evidence, a.Evidence) {
		t.Fatalf("a change within the bound: %+v", res)
	}
}

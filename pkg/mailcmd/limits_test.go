package mailcmd

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
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

// TestTamperedTablesNotSigned: rows changed in the tables without the
// directory key after inbound checked the directory (a long-running
// serve) are never signed into the ledger by a change, which a row it
// rewrites would launder; queries answer as the ledger says.
func TestTamperedTablesNotSigned(t *testing.T) {
	f := newFixture(t)
	f.handle(f.accepted("alice@dns.pt", "WHOAMI\n")) // the view of this head is checked
	if _, err := f.store.DB().ExecContext(f.ctx, `UPDATE contacts SET name = 'Mallory' WHERE email = 'alice@dns.pt'`); err != nil {
		t.Fatal(err)
	}
	before := f.serial()
	if _, err := f.h.Handle(f.ctx, f.accepted("alice@dns.pt", "SET 24X7 yes\n")); !errors.Is(err, directory.ErrTampered) {
		t.Fatalf("a change on tampered tables: %v, want ErrTampered", err)
	}
	if f.serial() != before {
		t.Fatal("an entry was written")
	}
	res := f.handle(f.accepted("alice@dns.pt", "WHOAMI\n"))
	if res.Failed {
		t.Fatalf("%+v", res)
	}
	if text := f.reply("alice@dns.pt").text; strings.Contains(text, "Mallory") || !strings.Contains(text, "Alice Silva") {
		t.Fatalf("the answer shows the tables, not the ledger:\n%s", text)
	}
}

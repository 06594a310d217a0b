package directory

import (
	"strings"
	"testing"
)

// TestEraseRecordsTheSubject (review r4 finding 2, its probe
// TestR4EraseLiesAboutContact): a contact.erase of Ana, signed by the
// directory key, that erases ivan's entry 10 (a version 3 entry: his
// timezone changed by a member's mail) and records it as Ana's, then
// resets ivan's row to before entry 10, is refused by verify: the
// entry's hash binds its subject (contact 5) in clear, and the erasure
// says contact 4. Without the subject (version 2), nobody could tell
// once the payload is gone.
func TestEraseRecordsTheSubject(t *testing.T) {
	const ana = 4
	f := erasedHome(t)
	if e := f.entries()[9]; e.Version != entryV3 || e.Subject != "contact:5" {
		t.Fatalf("entry 10: version %d subject %q", e.Version, e.Subject)
	}
	f.signErase([]int64{ana}, []int64{4, 7, 8, 9, 10}, func(i int, r *ErasedEntry) {
		if i == 4 {
			r.Contact = ana // the lie
		}
	})
	if _, err := f.s.w.ExecContext(f.ctx, `UPDATE contacts SET timezone='', confirmed='2026-11-01T10:07:00Z', updated_seq=5 WHERE email='ivan@cctld.ru'`); err != nil {
		t.Fatal(err)
	}
	const want = `ledger entry 10: entry 10 is about "contact:5" (its hash says so), not contact 4, whom the contact.erase says it was about (erased by entry 13): tampering`
	if _, err := f.verify(); !IsVerifyError(err) || !strings.Contains(err.Error(), want) {
		t.Fatalf("verify of an erasure that records ivan's entry as Ana's: %v, want %q", err, want)
	}
	// The subject is in the hash: a database writer who makes it Ana's
	// breaks the chain.
	tamper(t, f.path, `UPDATE ledger SET subject = 'contact:4' WHERE seq = 10`)
	if _, err := f.verify(); !IsVerifyError(err) || !strings.Contains(err.Error(), "ledger entry 10: content does not match its hash") {
		t.Fatalf("verify with entry 10's subject changed: %v", err)
	}
}

// TestEntrySubject: every version 3 entry's subject is the contact its
// payload is about, for the operations an erasure can erase, and none
// for the others; verify refuses one signed with another subject (what
// a holder of the directory key could write), a subject on a version 2
// entry, and a subject changed in the database.
func TestEntrySubject(t *testing.T) {
	f := newFixture(t)
	f.populate()
	f.update(func(tx *Tx) error {
		_, err := tx.UpdateContact("ana@dns.pt", func(c *Contact) error { c.Name = "Ana M. Sousa"; return nil })
		return err
	})
	f.update(func(tx *Tx) error {
		_, err := tx.SetKey("ana@dns.pt", &Key{Fingerprint: "AAAA000000000000000000000000000000000002", Armored: "k2"})
		return err
	})
	f.update(func(tx *Tx) error { _, err := tx.RemoveContact("noc@dns.pt"); return err })
	var got []string
	for _, e := range f.entries() {
		if e.Version != entryV3 {
			t.Fatalf("entry %d of version %d", e.Seq, e.Version)
		}
		got = append(got, e.Op+"="+e.Subject)
	}
	const want = "genesis= member.add= member.add= contact.add=contact:4 contact.add=contact:5 contact.add=contact:6 " +
		"contact.update=contact:4 key.set=contact:4 contact.remove=contact:6"
	if strings.Join(got, " ") != want {
		t.Fatalf("subjects:\n%s\nwant\n%s", strings.Join(got, " "), want)
	}
	if _, err := f.verify(); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct{ name, stmt, want string }{
		{"changed", `UPDATE ledger SET subject = 'contact:5' WHERE seq = 7`, "ledger entry 7: content does not match its hash"},
		{"dropped", `UPDATE ledger SET subject = NULL WHERE seq = 8`, "ledger entry 8: content does not match its hash"},
		{"added", `UPDATE ledger SET subject = 'contact:4' WHERE seq = 2`, "ledger entry 2: content does not match its hash"},
	} {
		t.Run(c.name, func(t *testing.T) {
			saved := f.entries()
			tamper(t, f.path, c.stmt)
			t.Cleanup(func() {
				for _, e := range saved {
					tamper(t, f.path, `UPDATE ledger SET subject = ? WHERE seq = ?`, nullable(e.Subject), e.Seq)
				}
			})
			if _, err := f.verify(); !IsVerifyError(err) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("verify: %v, want %q", err, c.want)
			}
		})
	}
	// Signed with the subject of another contact: refused while its
	// payload says whom it is about.
	f.update(func(tx *Tx) error {
		e, err := tx.newEntry(opContactUpdate, mustContact(t, tx, "ivan@cctld.ru", func(c *Contact) { c.TimeZone = "Europe/Moscow" }))
		if err != nil {
			return err
		}
		if err := apply(tx.ctx, tx.tx, e); err != nil {
			return err
		}
		e.Subject = "contact:4"
		return tx.seal(e)
	})
	if _, err := f.verify(); !IsVerifyError(err) || !strings.Contains(err.Error(), `ledger entry 10: entry 10's subject is "contact:4", but its payload is about "contact:5"`) {
		t.Fatalf("verify of an entry signed with another subject: %v", err)
	}
	h := HashedEntry{Seq: 4, Op: opContactAdd, Version: entryV2, Payload: "{}", Subject: "contact:4"}
	if err := h.CheckSubject(); err == nil || !strings.Contains(err.Error(), "entry 4, of version 2, has a subject") {
		t.Fatalf("CheckSubject of a version 2 entry with a subject: %v", err)
	}
}

// mustContact reads the contact with address email in tx and returns it
// changed by fn.
func mustContact(t *testing.T, tx *Tx, email string, fn func(*Contact)) Contact {
	t.Helper()
	c, err := tx.Contact(email)
	if err != nil {
		t.Fatal(err)
	}
	fn(&c)
	return c
}

package directory

import (
	"fmt"
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

// v2Home makes a fixture as the ccdir releases of entry version 2 made
// it (signed schema 2, entries of version 2), populated, with one
// contact changed.
func v2Home(t *testing.T) *fixture {
	t.Helper()
	released := signedMigrations
	signedMigrations = released[:2] // and so entries of version 2 (ledgerVersion)
	defer func() { signedMigrations = released }()
	f := newFixture(t)
	f.populate()
	f.update(func(tx *Tx) error {
		_, err := tx.UpdateContact("ivan@cctld.ru", func(c *Contact) error { c.TimeZone = "Europe/Moscow"; return nil })
		return err
	})
	return f
}

// TestEntryVersion3Migrated: a home of signed schema 2 verifies
// read-only as it is; opened for writing it gains ledger.subject (signed
// schema 3) and keeps its version 2 entries and their hashes; the
// entries after are version 3, each with its subject (upgradedHome). An
// erasure of a contact added before the upgrade erases their version 2
// and 3 entries and verifies. What stays as before (ARCHITECTURE): of a
// version 2 entry whose payload is gone, nobody can tell whom it was
// about, so an erasure of a contact added before the upgrade that
// records another's version 2 entry as theirs is not found; one of a
// contact added after the upgrade is (an entry about a contact never
// comes before its contact.add).
func TestEntryVersion3Migrated(t *testing.T) {
	t.Run("erase", func(t *testing.T) {
		f := upgradedHome(t)
		f.update(func(tx *Tx) error { _, err := tx.Erase("ana@dns.pt", "GDPR art. 17 request 2026-43"); return err })
		if _, err := f.verify(); err != nil {
			t.Fatalf("verify after erasing Ana (versions 2 and 3): %v", err)
		}
		if p, err := f.entries()[9].Erasure(); err != nil || p == nil || fmt.Sprint(p.Redacts) != "[4 8]" {
			t.Fatalf("the erasure: %+v, %v", p, err)
		}
	})
	t.Run("v2 residual", func(t *testing.T) {
		f := upgradedHome(t)
		f.signErase([]int64{4}, []int64{4, 7, 8}, func(i int, r *ErasedEntry) {
			if i == 1 {
				r.Contact = 4 // ivan's version 2 entry 7, recorded as Ana's
			}
		})
		// ivan's row as entry 5 added him: entry 7 undone.
		tamper(t, f.path, `UPDATE contacts SET timezone = '', confirmed = ?, updated_seq = 5 WHERE id = 5`, f.entries()[4].Time)
		if _, err := f.verify(); err != nil {
			t.Fatalf("the residual (ARCHITECTURE, erasure) changed: verify %v; update the docs", err)
		}
	})
	t.Run("added after", func(t *testing.T) {
		f := upgradedHome(t)
		f.signErase([]int64{9}, []int64{7, 9}, func(i int, r *ErasedEntry) {
			if i == 0 {
				r.Contact = 9 // ivan's version 2 entry 7, recorded as Zoe's
			}
		})
		const want = "contact.erase erases entry 7 as about contact 9, whom entry 9 added later"
		if _, err := f.verify(); !IsVerifyError(err) || !strings.Contains(err.Error(), want) {
			t.Fatalf("verify: %v, want %q", err, want)
		}
	})
}

// upgradedHome is v2Home (entries 1 to 7 of version 2: 4 Ana, 5 ivan, 7
// ivan's timezone) checked read-only, then opened for writing (signed
// schema 3), with 8 a change of Ana and 9 Zoe added (version 3).
func upgradedHome(t *testing.T) *fixture {
	t.Helper()
	f := v2Home(t)
	before := f.entries()
	for _, e := range before {
		if e.Version != entryV2 || e.Subject != "" || e.Salt == "" {
			t.Fatalf("entry %d of the version 2 home: version %d subject %q", e.Seq, e.Version, e.Subject)
		}
	}
	opts := f.opts()
	opts.ReadOnly = true
	if _, err := f.reopen(opts); err != nil {
		t.Fatal(err)
	}
	head, err := f.verify()
	if err != nil {
		t.Fatalf("read-only verify of a signed schema 2 home: %v", err)
	}
	opts.ReadOnly = false
	if _, err := f.reopen(opts); err != nil {
		t.Fatal(err)
	}
	if h, err := f.verify(); err != nil || h != head {
		t.Fatalf("verify after the migration: %v, %v (want %v)", h, err, head)
	}
	f.update(func(tx *Tx) error { // 8
		_, err := tx.UpdateContact("ana@dns.pt", func(c *Contact) error { c.Name = "Ana M. Sousa"; return nil })
		return err
	})
	f.update(func(tx *Tx) error { // 9
		_, err := tx.AddContact(Contact{Email: "zoe@dns.pt", Name: "Zoe Nova", Phones: []Phone{{Number: "+351 21 000 0009"}}, Roles: []Role{{TLD: "pt", Role: "admin"}}})
		return err
	})
	for i, e := range f.entries() {
		switch {
		case i < len(before):
			if e.Version != entryV2 || e.Hash != before[i].Hash || e.Subject != "" {
				t.Fatalf("entry %d changed by the migration: %+v", e.Seq, e)
			}
		case e.Version != entryV3 || e.Subject != contactSubject(map[int64]int64{8: 4, 9: 9}[e.Seq]) || computeHash(&e) != e.Hash:
			t.Fatalf("new entry %d: version %d subject %q", e.Seq, e.Version, e.Subject)
		}
	}
	if _, err := f.verify(); err != nil {
		t.Fatalf("verify of version 2 and 3 entries: %v", err)
	}
	return f
}

package directory

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// v1Home makes a fixture as the ccdir releases before entry version 2
// made it (signed schema 1, entries of version 1), populated, with one
// contact changed.
func v1Home(t *testing.T) *fixture {
	t.Helper()
	released := signedMigrations
	signedMigrations = released[:1] // and so entries of version 1 (ledgerVersion)
	defer func() { signedMigrations = released }()
	f := newFixture(t)
	f.populate()
	f.update(func(tx *Tx) error {
		_, err := tx.UpdateContact("ana@dns.pt", func(c *Contact) error { c.Name = "Ana M. Sousa"; return nil })
		return err
	})
	return f
}

// entries reads the whole ledger.
func (f *fixture) entries() []Entry {
	f.t.Helper()
	var out []Entry
	if err := f.s.Log(f.ctx, 1, func(e *Entry) error { out = append(out, *e); return nil }); err != nil {
		f.t.Fatal(err)
	}
	return out
}

// TestEntryVersion2Migrated: a home made before entry version 2 (signed
// schema 1) verifies read-only as it is; opened for writing it gains the
// ledger's new columns (signed schema 2), keeps its version 1 entries
// and their hashes, and writes version 2 entries with a salt of their
// own; verify checks both, and a changed payload or salt of a version 2
// entry is found.
func TestEntryVersion2Migrated(t *testing.T) {
	f := v1Home(t)
	before := f.entries()
	for _, e := range before {
		if e.Version != entryV1 || e.Salt != "" {
			t.Fatalf("entry %d of the old home: version %d salt %q", e.Seq, e.Version, e.Salt)
		}
	}
	opts := f.opts()
	opts.ReadOnly = true
	if _, err := f.reopen(opts); err != nil {
		t.Fatal(err)
	}
	head, err := f.verify()
	if err != nil {
		t.Fatalf("read-only verify of a signed schema 1 home: %v", err)
	}
	if got := f.entries(); len(got) != len(before) || got[len(got)-1].Hash != head.Hash {
		t.Fatalf("log of the old home: %d entries", len(got))
	}

	opts.ReadOnly = false
	if _, err := f.reopen(opts); err != nil {
		t.Fatal(err)
	}
	var ver int
	if err := f.s.r.QueryRow(`PRAGMA user_version`).Scan(&ver); err != nil || ver != SchemaVersion() || ver < 2 {
		t.Fatalf("user_version %d (want %d), %v", ver, SchemaVersion(), err)
	}
	if h, err := f.verify(); err != nil || h != head {
		t.Fatalf("verify after the migration: %v, %v (want %v)", h, err, head)
	}
	f.update(func(tx *Tx) error {
		_, err := tx.UpdateContact("ivan@cctld.ru", func(c *Contact) error { c.TimeZone = "Europe/Moscow"; return nil })
		return err
	})
	f.update(func(tx *Tx) error {
		_, err := tx.UpdateContact("ivan@cctld.ru", func(c *Contact) error { c.TimeZone = "Asia/Vladivostok"; return nil })
		return err
	})
	all := f.entries()
	for i, e := range all {
		if i < len(before) {
			if e.Version != entryV1 || e.Hash != before[i].Hash || e.Payload != before[i].Payload {
				t.Fatalf("entry %d changed by the migration: %+v", e.Seq, e)
			}
			continue
		}
		if e.Version != EntryVersion || len(e.Salt) != 2*saltBytes || e.PayloadDigest != "" || e.EvidenceDigest != "" {
			t.Fatalf("new entry %d: version %d salt %q digests %q %q", e.Seq, e.Version, e.Salt, e.PayloadDigest, e.EvidenceDigest)
		}
		if computeHash(&e) != e.Hash {
			t.Fatalf("new entry %d: hash does not recompute", e.Seq)
		}
	}
	if a, b := all[len(all)-1], all[len(all)-2]; a.Salt == b.Salt {
		t.Fatalf("entries %d and %d share the salt %s", a.Seq, b.Seq, a.Salt)
	}
	if _, err := f.verify(); err != nil {
		t.Fatalf("verify of version 1 and 2 entries: %v", err)
	}

	last := all[len(all)-1]
	for _, c := range []struct{ name, stmt string }{
		{"payload", `UPDATE ledger SET payload = replace(payload, 'Vladivostok', 'Vladikavkaz') WHERE seq = ?`},
		{"salt", `UPDATE ledger SET salt = '00000000000000000000000000000000' WHERE seq = ?`},
	} {
		t.Run(c.name, func(t *testing.T) {
			saved := last
			tamper(t, f.path, c.stmt, last.Seq)
			t.Cleanup(func() {
				tamper(t, f.path, `UPDATE ledger SET payload = ?, salt = ? WHERE seq = ?`, saved.Payload, saved.Salt, saved.Seq)
			})
			_, err := f.verify()
			if !IsVerifyError(err) || !strings.Contains(err.Error(), "content does not match its hash") {
				t.Fatalf("verify with a changed %s: %v", c.name, err)
			}
		})
	}
	if _, err := f.verify(); err != nil {
		t.Fatalf("verify once healed: %v", err)
	}
}

// erasedHome is v1Home migrated, with version 2 entries about Ana (a new
// key, a phone changed by her own signed mail), a mail of hers changing
// another contact, and a mail by another contact naming her.
func erasedHome(t *testing.T) *fixture {
	t.Helper()
	f := v1Home(t) // 1 genesis, 2-3 members, 4-6 contacts, 7 Ana renamed (version 1)
	if _, err := f.reopen(f.opts()); err != nil {
		t.Fatal(err)
	}
	ana2 := "AAAA000000000000000000000000000000000002"
	noc := "AAAA000000000000000000000000000000000003"
	f.update(func(tx *Tx) error { // 8
		_, err := tx.SetKey("ana@dns.pt", &Key{Fingerprint: ana2, Armored: "k2 of Ana Sousa"})
		return err
	})
	member := func(fpr, mail string, fn func(*Tx) error) {
		t.Helper()
		if _, err := f.s.Update(f.ctx, Actor{Name: memberActor + fpr, Evidence: []byte(mail)}, fn); err != nil {
			t.Fatal(err)
		}
	}
	member(ana2, "DIRECTORY ccdir@example.org\nSET PHONE +351 91 000 0001\n", func(tx *Tx) error { // 9
		_, err := tx.UpdateContact("ana@dns.pt", func(c *Contact) error {
			c.Phones = append(c.Phones, Phone{Number: "+351 91 000 0001"})
			return nil
		})
		return err
	})
	member(ana2, "DIRECTORY ccdir@example.org\nSET TIMEZONE ivan Europe/Moscow\n", func(tx *Tx) error { // 10
		_, err := tx.UpdateContact("ivan@cctld.ru", func(c *Contact) error { c.TimeZone = "Europe/Moscow"; return nil })
		return err
	})
	f.update(func(tx *Tx) error { // 11
		_, err := tx.SetKey("noc@dns.pt", &Key{Fingerprint: noc, Armored: "k3"})
		return err
	})
	member(noc, "DIRECTORY ccdir@example.org\nSET LANGUAGES en (ANA@dns.pt is away)\n", func(tx *Tx) error { // 12
		_, err := tx.UpdateContact("noc@dns.pt", func(c *Contact) error { c.Languages = []string{"en"}; return nil })
		return err
	})
	return f
}

// stateOf reads the members, and the contacts but the one with email.
func (f *fixture) stateOf(but string) string {
	f.t.Helper()
	snap, err := f.s.Snapshot(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%+v\n", snap.Members)
	for _, c := range snap.Contacts {
		if c.Email != but {
			k := c.Key
			c.Key = nil
			fmt.Fprintf(&b, "%+v", c)
			if k != nil {
				fmt.Fprintf(&b, " %+v", *k)
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// TestErase: erasing Ana redacts her version 1 entries to tombstones and
// her version 2 entries to their digests, erases the evidence of the
// mails she signed or that name her, deletes her contact, and leaves
// every other row as it was; verify holds and names the redactions; the
// file holds none of her data once scrubbed; her address can be taken by
// a new contact.
func TestErase(t *testing.T) {
	f := erasedHome(t)
	others := f.stateOf("ana@dns.pt")
	before := f.entries()
	head := f.serial()

	// Refused: nothing changes.
	for _, c := range []struct{ email, reason, want string }{
		{"nobody@dns.pt", "GDPR art. 17", "no contact, present or past, has the address nobody@dns.pt"},
		{"ana@dns.pt", "", "reason"},
		{"ana@dns.pt", strings.Repeat("x", MaxEraseReason+1), "longer than"},
	} {
		_, err := f.s.Update(f.ctx, Operator, func(tx *Tx) error { _, err := tx.Erase(c.email, c.reason); return err })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("erase %q %q: %v, want %q", c.email, c.reason, err, c.want)
		}
	}
	if f.serial() != head {
		t.Fatal("a refused erase wrote an entry")
	}

	var er *Erased
	f.update(func(tx *Tx) (err error) { er, err = tx.Erase("ANA@dns.pt", "GDPR art. 17 request 2026-42"); return err })
	if err := f.s.Scrub(f.ctx); err != nil {
		t.Fatal(err)
	}
	if er.Entry != head+1 || fmt.Sprint(er.IDs) != "[4]" || fmt.Sprint(er.Redacted) != "[4 7 8 9]" || fmt.Sprint(er.Evidence) != "[10 12]" {
		t.Fatalf("erased %+v", er)
	}
	if fmt.Sprint(er.Fingerprints) != "[AAAA000000000000000000000000000000000001 AAAA000000000000000000000000000000000002]" ||
		fmt.Sprint(er.Names) != "[Ana M. Sousa Ana Sousa]" || len(er.Phones) != 2 {
		t.Fatalf("erased %+v", er)
	}
	if _, err := f.s.Contact(f.ctx, "ana@dns.pt"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Ana after the erasure: %v", err)
	}
	if got := f.stateOf("ana@dns.pt"); got != others {
		t.Fatalf("the other rows changed:\n%s\nwant\n%s", got, others)
	}
	if _, err := f.verify(); err != nil {
		t.Fatalf("verify after the erasure: %v", err)
	}
	reds, err := f.s.Redactions(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, r := range reds {
		lines = append(lines, r.String())
	}
	want := "entry 4 redacted by entry 13 (erase: GDPR art. 17 request 2026-42)\n" +
		"entry 7 redacted by entry 13 (erase: GDPR art. 17 request 2026-42)\n" +
		"entry 8 redacted by entry 13 (erase: GDPR art. 17 request 2026-42)\n" +
		"entry 9 redacted by entry 13 (erase: GDPR art. 17 request 2026-42)\n" +
		"entry 10 evidence redacted by entry 13 (erase: GDPR art. 17 request 2026-42)\n" +
		"entry 12 evidence redacted by entry 13 (erase: GDPR art. 17 request 2026-42)"
	if got := strings.Join(lines, "\n"); got != want {
		t.Fatalf("redactions:\n%s\nwant\n%s", got, want)
	}
	after := f.entries()
	if p, err := after[12].Erasure(); err != nil || p == nil || fmt.Sprint(p.IDs, p.Redacts, p.Evidence) != "[4] [4 7 8 9] [10 12]" || p.Reason != "GDPR art. 17 request 2026-42" {
		t.Fatalf("entry 13's erasure: %+v, %v", p, err)
	}
	if p, err := after[4].Erasure(); p != nil || err != nil {
		t.Fatalf("entry 5's erasure: %+v, %v", p, err)
	}
	for i, e := range after[:len(before)] {
		b := before[i]
		switch e.Seq {
		case 4, 7: // version 1: tombstones
			if !e.Tombstone() || e.Hash != b.Hash || string(e.Sig) != string(b.Sig) || computeHash(&e) == e.Hash {
				t.Fatalf("entry %d: %+v", e.Seq, e)
			}
		case 8, 9: // version 2: digests kept, the hash recomputes
			if !e.Redacted() || e.Tombstone() || e.Salt != "" || len(e.Evidence) > 0 || e.PayloadDigest != b.PayloadSum() ||
				e.EvidenceDigest != b.EvidenceSum() || computeHash(&e) != b.Hash {
				t.Fatalf("entry %d: %+v", e.Seq, e)
			}
		case 10, 12:
			if e.Payload != b.Payload || !e.EvidenceErased() || computeHash(&e) != b.Hash {
				t.Fatalf("entry %d: %+v", e.Seq, e)
			}
		default:
			if e.Payload != b.Payload || string(e.Evidence) != string(b.Evidence) || e.EvidenceDigest != "" || e.PayloadDigest != "" {
				t.Fatalf("entry %d changed: %+v", e.Seq, e)
			}
		}
	}
	for _, suffix := range []string{"", "-wal"} {
		data, err := os.ReadFile(f.path + suffix)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		for _, s := range []string{"Ana Sousa", "Ana M. Sousa", "ana@dns.pt", "ANA@dns.pt", "+351213141516", "+351910000001", "k2 of Ana", "Sousa"} {
			if bytes.Contains(bytes.ToLower(data), bytes.ToLower([]byte(s))) {
				t.Errorf("directory.db%s still holds %q", suffix, s)
			}
		}
	}
	// Erased: not known any more.
	if _, err := f.s.Update(f.ctx, Operator, func(tx *Tx) error { _, err := tx.Erase("ana@dns.pt", "again"); return err }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("erase again: %v", err)
	}
	// The address, reused, is a new person.
	f.update(func(tx *Tx) error {
		_, err := tx.AddContact(Contact{Email: "ana@dns.pt", Name: "Ana Nova", Phones: []Phone{{Number: "+351 21 000 0000"}}, Roles: []Role{{TLD: "pt", Role: "security"}}})
		return err
	})
	if _, err := f.verify(); err != nil {
		t.Fatalf("verify after the address was reused: %v", err)
	}
	// A fresh Store replays from scratch (not the kept replay).
	if _, err := f.reopen(f.opts()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Checked(f.ctx, f.signer.Fingerprint(), f.signer.verify); err != nil {
		t.Fatalf("checked: %v", err)
	}

	// Tampering: a tombstone nobody covers, an erased evidence nobody
	// covers, a covered entry whose payload came back.
	for _, c := range []struct{ name, stmt, undo, want string }{
		{"uncovered tombstone", `UPDATE ledger SET payload = '' WHERE seq = 5`, `UPDATE ledger SET payload = ? WHERE seq = 5`,
			"ledger entry 5: its payload was erased, but no contact.erase entry covers it: tampering"},
		{"uncovered evidence", `UPDATE ledger SET evidence = NULL, evidence_digest = 'ab' WHERE seq = 11`, ``,
			"ledger entry 11: its evidence was erased, but no contact.erase entry covers it"},
		{"payload back", `UPDATE ledger SET payload = '{}' WHERE seq = 8`, `UPDATE ledger SET payload = '' WHERE seq = 8`,
			"ledger entry 8: entry 13 (contact.erase) erased it, but it still holds"},
		{"erasure changed", `UPDATE ledger SET payload = replace(payload, '[4,7,8,9]', '[7,8,9]') WHERE seq = 13`, `UPDATE ledger SET payload = replace(payload, '[7,8,9]', '[4,7,8,9]') WHERE seq = 13`,
			"ledger entry 4: its payload was erased, but no contact.erase entry covers it"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p5 := after[4].Payload
			tamper(t, f.path, c.stmt)
			_, err := f.verify()
			if !IsVerifyError(err) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("verify: %v, want %q", err, c.want)
			}
			switch {
			case strings.Contains(c.undo, "?"):
				tamper(t, f.path, c.undo, p5)
			case c.undo != "":
				tamper(t, f.path, c.undo)
			default:
				tamper(t, f.path, `UPDATE ledger SET evidence = NULL, evidence_digest = NULL WHERE seq = 11`)
			}
			if _, err := f.verify(); err != nil {
				t.Fatalf("healed: %v", err)
			}
		})
	}
}

func TestErasedMentioned(t *testing.T) {
	er := &Erased{Emails: []string{"ana@dns.pt"}, Names: []string{"Ana Sousa", "NOC"}, Phones: []string{"+351212345678"}}
	for mail, want := range map[string]bool{
		"SET EMAIL ANA@DNS.PT":             true,
		"ask ana sousa":                    true,
		"call +351 21 234 5678 now":        true,
		"call (+351) 21-234.5678":          true,
		"call 00351212345678":              true,
		"SET PHONE +351 21 234 5679":       false,
		"serial 351 and 212345678 later":   false,
		"DIRECTORY ccdir@example.org\nWHO": false,
		"SET EMAIL noc@dns.pt":             false,
	} {
		if got := er.mentioned([]byte(mail)); got != want {
			t.Errorf("mentioned(%q) = %v, want %v", mail, got, want)
		}
	}
}

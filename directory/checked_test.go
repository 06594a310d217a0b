package directory

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	anaKey   = "AAAA000000000000000000000000000000000001" // ana's key in populate
	otherKey = "BBBB000000000000000000000000000000000002"
)

// TestCheckedRefusesTamperedTables: a key swapped into the contacts table
// behind ccdir's back is never read as registered by Checked (a new store,
// as process opens one per mail), nor by Tx.Check inside a write.
func TestCheckedRefusesTamperedTables(t *testing.T) {
	f := newFixture(t)
	f.populate()
	snap, err := f.s.Checked(f.ctx, f.signer.Fingerprint(), f.signer.verify)
	if err != nil {
		t.Fatalf("Checked before tampering: %v", err)
	}
	if k := keyOf(snap, "ana@dns.pt"); k != anaKey {
		t.Fatalf("Checked: ana's key is %q", k)
	}
	tamper(t, f.path, `UPDATE contacts SET key_fingerprint = ?, key_armored = 'evil' WHERE email = 'ana@dns.pt'`, otherKey)

	// The store that checked this head keeps what the ledger says.
	if snap, err := f.s.Checked(f.ctx, f.signer.Fingerprint(), f.signer.verify); err != nil || keyOf(snap, "ana@dns.pt") != anaKey {
		t.Fatalf("Checked at a checked head: %v", err)
	}
	s2, err := Open(f.ctx, f.path, f.opts())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	_, err = s2.Checked(f.ctx, f.signer.Fingerprint(), f.signer.verify)
	var te *TamperError
	if !errors.As(err, &te) || !errors.Is(err, ErrTampered) {
		t.Fatalf("Checked after tampering: %v, want a TamperError", err)
	}
	if want := `table contacts, row id=4 ("ana@dns.pt"): column key_fingerprint`; !strings.Contains(err.Error(), want) {
		t.Fatalf("Checked: %q, want it to name %q", err, want)
	}
	var de *Error
	if errors.As(err, &de) {
		t.Fatalf("a TamperError must not be a refusal (*Error): %v", err)
	}
	before := f.serial()
	_, err = f.s.Update(f.ctx, Actor{Name: "member:" + otherKey, Evidence: []byte("mail")}, func(tx *Tx) error {
		if err := tx.Check(f.signer.Fingerprint(), f.signer.verify); err != nil {
			return err
		}
		_, err := tx.SetKey("ana@dns.pt", &Key{Fingerprint: "CCCC000000000000000000000000000000000003", Armored: "k3"})
		return err
	})
	if !errors.Is(err, ErrTampered) {
		t.Fatalf("Tx.Check after tampering: %v, want ErrTampered", err)
	}
	if f.serial() != before {
		t.Fatal("an entry was written")
	}
}

// TestCheckedLedgerRewritten: a ledger rewritten to say what the tampered
// tables say does not pass either: the head's signature no longer covers
// the chain.
func TestCheckedLedgerRewritten(t *testing.T) {
	f := newFixture(t)
	f.populate()
	tamper(t, f.path, `UPDATE contacts SET name = 'Eve' WHERE email = 'ana@dns.pt'`)
	tamper(t, f.path, `UPDATE ledger SET payload = replace(payload, 'Ana Sousa', 'Eve') WHERE seq = 4`)
	// A process that opens the home (as process does per mail) names the
	// rewritten entry.
	s2, err := Open(f.ctx, f.path, f.opts())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	_, err = s2.Checked(f.ctx, f.signer.Fingerprint(), f.signer.verify)
	if !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "ledger entry 4: content does not match its hash") {
		t.Fatalf("Checked: %v", err)
	}
	// The Store that wrote the head keeps the replay it vouched for, which
	// the rewritten ledger cannot change: it names the row.
	_, err = f.s.Checked(f.ctx, f.signer.Fingerprint(), f.signer.verify)
	if !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), `table contacts, row id=4 ("ana@dns.pt"): column name is "Eve"`) {
		t.Fatalf("Checked by the writing Store: %v", err)
	}
}

// TestVerifyMemberActors: an entry made by signed mail must name, as its
// actor, a key registered to a contact before the mail (the later entries
// of one mail may follow a KEY-ROTATE among them), and its evidence must
// verify with that key.
func TestVerifyMemberActors(t *testing.T) {
	member := func(fpr, evidence string) Actor { return Actor{Name: "member:" + fpr, Evidence: []byte(evidence)} }
	setName := func(name string) func(*Tx) error {
		return func(tx *Tx) error {
			_, err := tx.UpdateContact("ana@dns.pt", func(c *Contact) error { c.Name = name; return nil })
			return err
		}
	}
	f := newFixture(t)
	f.populate()
	var evidenceErr error
	checkEvidence := func(evidence []byte, armored string, at time.Time) error {
		if string(evidence) == "forged" {
			return errors.New("bad signature")
		}
		if armored == "" || at.IsZero() {
			return errors.New("no key or time")
		}
		return evidenceErr
	}
	auditor := func() error {
		t.Helper()
		s, err := Open(f.ctx, f.path, Options{ReadOnly: true, Migrations: f.migrations, Evidence: checkEvidence})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		_, err = s.Verify(f.ctx, f.signer.Fingerprint(), f.signer.verify)
		return err
	}
	write := func(a Actor, fn func(*Tx) error) {
		t.Helper()
		if _, err := f.s.Update(f.ctx, a, fn); err != nil {
			t.Fatal(err)
		}
	}
	// Legitimate: many mails by ana, one rotating her key between two
	// changes (the change after the rotation is still the same mail).
	for i := range 30 {
		write(member(anaKey, "mail "+string(rune('a'+i%26))+strings.Repeat("x", i)), setName("Ana "+strings.Repeat("i", i+1)))
	}
	write(member(anaKey, "rotate"), func(tx *Tx) error {
		if err := setName("Ana R")(tx); err != nil {
			return err
		}
		if _, err := tx.SetKey("ana@dns.pt", &Key{Fingerprint: otherKey, Armored: "k2"}); err != nil {
			return err
		}
		return setName("Ana Rotated")(tx)
	})
	write(member(otherKey, "next"), setName("Ana Next"))
	if err := auditor(); err != nil {
		t.Fatalf("verify of legitimate member entries: %v", err)
	}
	if _, err := f.verify(); err != nil {
		t.Fatalf("verify without an evidence check: %v", err)
	}
	head := f.serial()

	// Signed by the key ana had before: not registered any more.
	write(member(anaKey, "late"), setName("Eve"))
	err := auditor()
	if want := "ledger entry " + itoa(head+1) + ": made by key " + anaKey + ", which was not registered to any contact at entry " + itoa(head); err == nil || err.Error() != want {
		t.Fatalf("verify: %v, want %q", err, want)
	}
	if _, err := f.verify(); err == nil || !strings.Contains(err.Error(), "ledger entry "+itoa(head+1)+": made by key") {
		t.Fatalf("verify without an evidence check: %v", err)
	}
}

func TestVerifyMemberEvidence(t *testing.T) {
	f := newFixture(t)
	f.populate()
	if _, err := f.s.Update(f.ctx, Actor{Name: "member:" + anaKey, Evidence: []byte("forged")}, func(tx *Tx) error {
		_, err := tx.UpdateContact("ana@dns.pt", func(c *Contact) error { c.Name = "Eve"; return nil })
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s, err := Open(f.ctx, f.path, Options{ReadOnly: true, Evidence: func(ev []byte, armored string, _ time.Time) error {
		if armored != "k1" {
			return errors.New("not ana's key")
		}
		if string(ev) == "forged" {
			return errors.New("bad signature")
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Verify(f.ctx, f.signer.Fingerprint(), f.signer.verify)
	if want := "ledger entry 7: its evidence does not verify with key " + anaKey + ", registered at entry 6: bad signature"; err == nil || err.Error() != want {
		t.Fatalf("verify: %v, want %q", err, want)
	}
	// Without evidence at all.
	g := newFixture(t)
	g.populate()
	if _, err := g.s.Update(g.ctx, Actor{Name: "member:" + anaKey}, func(tx *Tx) error {
		_, err := tx.UpdateContact("ana@dns.pt", func(c *Contact) error { c.Name = "Eve"; return nil })
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.verify(); err == nil || err.Error() != "ledger entry 7: made by a member, but keeps no signed mail as evidence" {
		t.Fatalf("verify: %v", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func keyOf(s *Snapshot, email string) string {
	for _, c := range s.Contacts {
		if c.Email == email && c.Key != nil {
			return c.Key.Fingerprint
		}
	}
	return ""
}

// TestMemberChanges counts the entries of one contact's mails in a
// window, across a rotation of its key by mail, and nobody else's.
func TestMemberChanges(t *testing.T) {
	f := newFixture(t)
	f.populate()
	member := func(fpr string) Actor { return Actor{Name: "member:" + fpr, Evidence: []byte("mail")} }
	setName := func(name string) func(*Tx) error {
		return func(tx *Tx) error {
			_, err := tx.UpdateContact("ana@dns.pt", func(c *Contact) error { c.Name = name; return nil })
			return err
		}
	}
	for _, u := range []struct {
		a  Actor
		fn func(*Tx) error
	}{
		{member(anaKey), setName("A1")},
		{Operator, setName("A2")},
		{member(anaKey), func(tx *Tx) error {
			_, err := tx.SetKey("ana@dns.pt", &Key{Fingerprint: otherKey, Armored: "k2"})
			return err
		}},
		{member(otherKey), setName("A3")},
		{Operator, func(tx *Tx) error {
			_, err := tx.SetKey("ivan@cctld.ru", &Key{Fingerprint: "CCCC000000000000000000000000000000000003", Armored: "k3"})
			return err
		}},
		{member("CCCC000000000000000000000000000000000003"), setName("A4")}, // ivan's, not ana's
	} {
		if _, err := f.s.Update(f.ctx, u.a, u.fn); err != nil {
			t.Fatal(err)
		}
	}
	var id int64
	if err := f.s.DB().QueryRowContext(f.ctx, `SELECT id FROM contacts WHERE email = 'ana@dns.pt'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	count := func(since time.Time) int {
		var n int
		_, err := f.s.Update(f.ctx, member(otherKey), func(tx *Tx) error {
			var err error
			n, err = tx.MemberChanges(id, since)
			if err == nil && since.Before(f.clock) {
				// This transaction's own entry counts too.
				if err = setName("A5")(tx); err == nil {
					var m int
					if m, err = tx.MemberChanges(id, since); err == nil && m != n+1 {
						err = fmt.Errorf("with this transaction's entry: %d, want %d", m, n+1)
					}
				}
			}
			if err == nil {
				err = errors.New("roll back")
			}
			return err
		})
		if err == nil || err.Error() != "roll back" {
			t.Fatal(err)
		}
		return n
	}
	if n := count(f.clock.Add(-time.Hour)); n != 3 {
		t.Fatalf("changes in the last hour: %d, want 3 (the operator's and another key's not counted)", n)
	}
	if n := count(f.clock.Add(time.Hour)); n != 0 {
		t.Fatalf("changes since later: %d", n)
	}
}

// TestUpdateRefusesTamperedTables: whoever writes next (the operator's
// CLI, which never calls Check itself) cannot sign a change on top of
// tables the ledger does not vouch for: the first entry of a transaction
// checks the tables it starts from, once, and a refusal writes nothing.
func TestUpdateRefusesTamperedTables(t *testing.T) {
	f := newFixture(t)
	f.populate()
	tamper(t, f.path, `UPDATE contacts SET name = 'Eve' WHERE email = 'ana@dns.pt'`)
	before := f.serial()
	for name, fn := range map[string]func(tx *Tx) error{
		"update the tampered contact": func(tx *Tx) error {
			_, err := tx.UpdateContact("ana@dns.pt", func(c *Contact) error { c.TimeZone = "UTC"; return nil })
			return err
		},
		"add a member": func(tx *Tx) error {
			_, err := tx.AddMember(Member{TLD: "br", Org: "NIC.br"})
			return err
		},
		"set another contact's key": func(tx *Tx) error {
			_, err := tx.SetKey("ivan@cctld.ru", &Key{Fingerprint: otherKey, Armored: "k2"})
			return err
		},
	} {
		_, err := f.s.Update(f.ctx, Operator, fn)
		var te *TamperError
		if !errors.As(err, &te) || !errors.Is(err, ErrTampered) {
			t.Fatalf("%s: %v, want a TamperError", name, err)
		}
		if want := `table contacts, row id=4 ("ana@dns.pt"): column name is "Eve" in the database but "Ana Sousa" in the ledger`; !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: %q, want it to name %q", name, err, want)
		}
		if f.serial() != before {
			t.Fatalf("%s: an entry was written", name)
		}
	}
	if _, err := f.verify(); err == nil || !strings.Contains(err.Error(), `column name is "Eve"`) {
		t.Fatalf("verify after the refusals: %v", err)
	}
	// A transaction that changes nothing signed (operational tables only)
	// is not refused: it signs nothing.
	if _, err := f.s.Update(f.ctx, Operator, func(tx *Tx) error {
		_, err := tx.SQL().ExecContext(f.ctx, `SELECT 1`)
		return err
	}); err != nil {
		t.Fatalf("an operational write: %v", err)
	}
	// Put back, the same changes go through, one check per transaction
	// (Check after it passed returns nil at once).
	tamper(t, f.path, `UPDATE contacts SET name = 'Ana Sousa' WHERE email = 'ana@dns.pt'`)
	f.update(func(tx *Tx) error {
		if _, err := tx.AddMember(Member{TLD: "br", Org: "NIC.br"}); err != nil {
			return err
		}
		if err := tx.Check(f.signer.Fingerprint(), func([]byte, []byte) error { return errors.New("checked again") }); err != nil {
			return err
		}
		_, err := tx.UpdateContact("ana@dns.pt", func(c *Contact) error { c.TimeZone = "UTC"; return nil })
		return err
	})
	if _, err := f.verify(); err != nil {
		t.Fatal(err)
	}
}

// TestCheckKeptReplay: the replay a Store keeps, moved on by its own
// commits, is what replaying the whole ledger gives (the tables of a
// fresh Store agree with a full replay, and this Store's checks only
// compare), and tampering after those commits is still found by the
// Store that kept it.
func TestCheckKeptReplay(t *testing.T) {
	f := newFixture(t)
	f.populate()
	fpr, verify := f.signer.Fingerprint(), f.signer.verify
	member := Actor{Name: "member:" + anaKey, Evidence: []byte("mail")}
	for i := range 5 {
		f.update(func(tx *Tx) error {
			_, err := tx.UpdateContact("ivan@cctld.ru", func(c *Contact) error { c.TimeZone = []string{"UTC", "Europe/Moscow"}[i%2]; return nil })
			return err
		})
	}
	if _, err := f.s.Update(f.ctx, member, func(tx *Tx) error {
		if _, err := tx.UpdateContact("ana@dns.pt", func(c *Contact) error { c.Name = "Ana R"; return nil }); err != nil {
			return err
		}
		_, err := tx.SetKey("ana@dns.pt", &Key{Fingerprint: otherKey, Armored: "k2"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	f.s.replayMu.Lock()
	kept := f.s.replay
	f.s.replayMu.Unlock()
	if kept == nil || kept.head.Serial != f.serial() {
		t.Fatalf("kept replay: %+v, want one at serial %d", kept, f.serial())
	}
	if _, err := f.s.Checked(f.ctx, fpr, verify); err != nil {
		t.Fatalf("Checked by the writing Store: %v", err)
	}
	if err := compareState(f.ctx, f.s.r, kept.tx, kept.head); err != nil {
		t.Fatalf("the kept replay differs from the tables: %v", err)
	}
	s2, err := Open(f.ctx, f.path, f.opts())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.Checked(f.ctx, fpr, verify); err != nil {
		t.Fatalf("Checked by a fresh Store: %v", err)
	}
	tamper(t, f.path, `UPDATE roles SET role = 'admin' WHERE tld = 'xn--p1ai'`)
	before := f.serial()
	_, err = f.s.Update(f.ctx, Operator, func(tx *Tx) error {
		if _, err := f.s.Checked(f.ctx, fpr, verify); err != nil {
			return err // the snapshot kept at this head: what the ledger says
		}
		_, err := tx.AddMember(Member{TLD: "br", Org: "NIC.br"})
		return err
	})
	if !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "table roles") {
		t.Fatalf("Update after tampering: %v", err)
	}
	if f.serial() != before {
		t.Fatal("an entry was written")
	}
}

// TestTxCheckSchema: a schema object ccdir never makes (a trigger that
// rewrites a contact after each ledger insert, a view, a table, an index)
// is refused by Tx.Check before the first entry, on the Store that kept a
// replay at this head as on a new one, and by Checked; nothing is signed.
// With the object gone, the same change goes through.
func TestTxCheckSchema(t *testing.T) {
	for _, tc := range []struct{ name, plant, drop, want string }{
		{"trigger", `CREATE TRIGGER evil_t AFTER INSERT ON ledger BEGIN UPDATE contacts SET key_fingerprint = '` + otherKey + `' WHERE email = 'ana@dns.pt'; END`,
			`DROP TRIGGER evil_t`, `trigger "evil_t"`},
		{"view", `CREATE VIEW evil_v AS SELECT * FROM contacts`, `DROP VIEW evil_v`, `view "evil_v"`},
		{"table", `CREATE TABLE evil(v)`, `DROP TABLE evil`, `unexpected table evil`},
		{"index", `CREATE INDEX evil_i ON contacts(name)`, `DROP INDEX evil_i`, `unexpected index evil_i`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.populate()
			if _, err := f.s.Checked(f.ctx, f.signer.Fingerprint(), f.signer.verify); err != nil {
				t.Fatal(err)
			}
			tamper(t, f.path, tc.plant)
			change := func(s *Store) error {
				_, err := s.Update(f.ctx, Actor{Name: "member:" + anaKey, Evidence: []byte("mail")}, func(tx *Tx) error {
					if _, err := tx.UpdateContact("ana@dns.pt", func(c *Contact) error { c.Name = "Ana Two"; return nil }); err != nil {
						return err
					}
					_, err := tx.UpdateContact("ana@dns.pt", func(c *Contact) error { c.Phones = []Phone{{Number: "+351 21 111 2222"}}; return nil })
					return err
				})
				return err
			}
			before := f.serial()
			s2, err := Open(f.ctx, f.path, f.opts())
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			for i, s := range []*Store{f.s, s2} {
				err := change(s)
				if !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("store %d: Update with a planted %s: %v, want ErrTampered naming %q", i, tc.name, err, tc.want)
				}
			}
			if _, err := s2.Checked(f.ctx, f.signer.Fingerprint(), f.signer.verify); !errors.Is(err, ErrTampered) {
				t.Fatalf("Checked with a planted %s: %v, want ErrTampered", tc.name, err)
			}
			if f.serial() != before {
				t.Fatal("an entry was written")
			}
			tamper(t, f.path, tc.drop)
			if err := change(f.s); err != nil {
				t.Fatalf("Update with the %s gone: %v", tc.name, err)
			}
			if _, err := f.s.Verify(f.ctx, f.signer.Fingerprint(), f.signer.verify); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if snap, err := s2.Checked(f.ctx, f.signer.Fingerprint(), f.signer.verify); err != nil || keyOf(snap, "ana@dns.pt") != anaKey {
				t.Fatalf("Checked after: %v", err)
			}
		})
	}
}

// TestCheckedAt: the directory at an earlier entry comes from the replay
// that checks the head, with the hash a caller recorded for it; a ledger
// edited before that entry, a hash that is not the entry's or an entry
// beyond the head is tampering. Asked again at the same head, nothing is
// replayed.
func TestCheckedAt(t *testing.T) {
	f := newFixture(t)
	f.populate()
	mid := f.serial()
	f.update(func(tx *Tx) error { _, err := tx.RemoveContact("noc@dns.pt"); return err })
	f.update(func(tx *Tx) error {
		_, err := tx.UpdateContact("ana@dns.pt", func(c *Contact) error { c.Name = "Ana M. Sousa"; return nil })
		return err
	})
	fpr := f.signer.Fingerprint()
	var verifies int
	verify := func(msg, sig []byte) error { verifies++; return f.signer.verify(msg, sig) }
	now, at, err := f.s.CheckedAt(f.ctx, fpr, verify, At{Serial: mid})
	if err != nil {
		t.Fatal(err)
	}
	then := at[0]
	if then.Head.Serial != mid || len(then.Contacts) != 3 || len(now.Contacts) != 2 {
		t.Fatalf("at %d: %d contacts; now: %d contacts", then.Head.Serial, len(then.Contacts), len(now.Contacts))
	}
	if then.Contacts[0].Name != "Ana Sousa" || now.Contacts[0].Name != "Ana M. Sousa" {
		t.Fatalf("names: then %q, now %q", then.Contacts[0].Name, now.Contacts[0].Name)
	}
	// The same entries again, with their hashes, and the head: cached.
	n := verifies
	_, at2, err := f.s.CheckedAt(f.ctx, fpr, verify, At{Serial: mid, Hash: then.Head.Hash}, At{Serial: now.Head.Serial, Hash: now.Head.Hash})
	if err != nil || verifies != n || at2[0].Head != then.Head || at2[1].Head != now.Head {
		t.Fatalf("again: %v (%d more signatures checked)", err, verifies-n)
	}
	if _, _, err := f.s.CheckedAt(f.ctx, fpr, verify, At{Serial: mid, Hash: now.Head.Hash}); !errors.Is(err, ErrTampered) ||
		!strings.Contains(err.Error(), fmt.Sprintf("ledger entry %d: its hash", mid)) {
		t.Fatalf("a recorded hash that is not the entry's: %v", err)
	}
	if _, _, err := f.s.CheckedAt(f.ctx, fpr, verify, At{Serial: 99, Hash: "ab"}); !errors.Is(err, ErrTampered) {
		t.Fatalf("an entry beyond the head: %v", err)
	}

	// An entry before mid edited: no snapshot at mid from a store that
	// has not checked this head yet.
	tamper(t, f.path, `UPDATE ledger SET payload = replace(payload, 'Ana Sousa', 'Eve') WHERE seq = 4`)
	s2, err := Open(f.ctx, f.path, f.opts())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, _, err := s2.CheckedAt(f.ctx, fpr, verify, At{Serial: mid}); !errors.Is(err, ErrTampered) ||
		!strings.Contains(err.Error(), "ledger entry 4: content does not match its hash") {
		t.Fatalf("CheckedAt after the ledger was edited: %v", err)
	}
}

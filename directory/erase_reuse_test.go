package directory

import (
	"errors"
	"strings"
	"testing"
)

// TestEraseAddressReused (review r3 finding 1): Alice had sec@dns.pt,
// changed it to alice@dns.pt, then Bob was added as sec@dns.pt. Erasing
// sec@dns.pt erases Bob, who has it now, and leaves Alice as she is;
// Alice's earlier address, once no one has it, is hers to erase. Two
// removed contacts whose last address it was are refused, named,
// nothing written.
func TestEraseAddressReused(t *testing.T) {
	f := newFixture(t)
	f.populate()
	f.update(func(tx *Tx) error {
		_, err := tx.AddContact(Contact{Email: "sec@dns.pt", Name: "Alice Old", Phones: []Phone{{Number: "+351 21 000 0010"}}, Roles: []Role{{TLD: "pt", Role: "security"}}})
		return err
	})
	f.update(func(tx *Tx) error {
		_, err := tx.UpdateContact("sec@dns.pt", func(c *Contact) error { c.Email = "alice@dns.pt"; return nil })
		return err
	})
	f.update(func(tx *Tx) error {
		_, err := tx.AddContact(Contact{Email: "sec@dns.pt", Name: "Bob New", Phones: []Phone{{Number: "+351 21 000 0011"}}, Roles: []Role{{TLD: "pt", Role: "security"}}})
		return err
	})
	alice, err := f.s.Contact(f.ctx, "alice@dns.pt")
	if err != nil {
		t.Fatal(err)
	}
	var er *Erased
	f.update(func(tx *Tx) (err error) { er, err = tx.Erase("sec@dns.pt", "GDPR art. 17 request 7"); return err })
	if len(er.IDs) != 1 || er.HasEmail("alice@dns.pt") || strings.Join(er.Names, ",") != "Bob New" {
		t.Fatalf("erased %+v, want Bob only", er)
	}
	got, err := f.s.Contact(f.ctx, "alice@dns.pt")
	if err != nil || got.ID != alice.ID || got.Name != "Alice Old" || len(got.Roles) != 1 {
		t.Fatalf("Alice after Bob's erasure: %+v %v", got, err)
	}
	if _, err := f.s.Contact(f.ctx, "sec@dns.pt"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Bob after his erasure: %v", err)
	}
	if _, err := f.verify(); err != nil {
		t.Fatalf("verify: %v", err)
	}
	// Her own earlier address: no one has it now, she had it.
	f.update(func(tx *Tx) (err error) { er, err = tx.Erase("sec@dns.pt", "GDPR art. 17 request 8"); return err })
	if len(er.IDs) != 1 || er.IDs[0] != alice.ID || !er.HasEmail("alice@dns.pt") {
		t.Fatalf("erased %+v, want Alice", er)
	}
	if _, err := f.verify(); err != nil {
		t.Fatalf("verify: %v", err)
	}

	// Two removed contacts, both last at old@dns.pt.
	for range 2 {
		f.update(func(tx *Tx) error {
			if _, err := tx.AddContact(Contact{Email: "old@dns.pt", Name: "Someone", Phones: []Phone{{Number: "+351 21 000 0012"}}, Roles: []Role{{TLD: "pt", Role: "admin"}}}); err != nil {
				return err
			}
			_, err := tx.RemoveContact("old@dns.pt")
			return err
		})
	}
	head := f.serial()
	_, err = f.s.Update(f.ctx, Operator, func(tx *Tx) error { _, err := tx.Erase("old@dns.pt", "GDPR art. 17 request 9"); return err })
	if err == nil || !strings.Contains(err.Error(), "names more than one person: contact") || !strings.Contains(err.Error(), "removed, last old@dns.pt") {
		t.Fatalf("erase of an address two removed contacts had: %v", err)
	}
	if f.serial() != head {
		t.Fatal("a refused erase wrote an entry")
	}
}

// TestEraseReasonNamesPerson (review r3 finding 4): the reason is
// signed into the ledger for good; one that names the person erased
// (address, name, phone) is refused, nothing written.
func TestEraseReasonNamesPerson(t *testing.T) {
	f := newFixture(t)
	f.populate()
	head := f.serial()
	for _, reason := range []string{"request of ana@dns.pt", "GDPR request of Ana Sousa", "caller +351 21 314-1516"} {
		_, err := f.s.Update(f.ctx, Operator, func(tx *Tx) error { _, err := tx.Erase("ana@dns.pt", reason); return err })
		if !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), "the reason names the person erased") {
			t.Fatalf("reason %q: %v", reason, err)
		}
	}
	if f.serial() != head {
		t.Fatal("a refused erase wrote an entry")
	}
}

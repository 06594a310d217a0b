package directory

import (
	"errors"
	"strings"
	"testing"
)

// The configured bounce address (Options.BounceAddress, bounces.address)
// and its +TAG forms are never a contact's email, as the directory's own
// -bounces address is not: AddContact and UpdateContact refuse them and
// nothing is written. Without one configured, the address is free.
func TestBounceAddressReserved(t *testing.T) {
	f := newFixture(t)
	f.populate()
	const bounce = "Returns@Mail.example.org"
	add := func(email string) error {
		_, err := f.s.Update(f.ctx, Operator, func(tx *Tx) error {
			_, err := tx.AddContact(Contact{Email: email, Name: "Loop", Phones: []Phone{{Number: "+351213141599"}},
				Roles: []Role{{TLD: "pt", Role: RoleAdmin}}})
			return err
		})
		return err
	}
	update := func(email string) error {
		_, err := f.s.Update(f.ctx, Operator, func(tx *Tx) error {
			_, err := tx.UpdateContact("ivan@cctld.ru", func(c *Contact) error { c.Email = email; return nil })
			return err
		})
		return err
	}
	f.s.opts.BounceAddress = bounce
	before := f.serial()
	for _, email := range []string{"returns@mail.example.org", "RETURNS+42-abcdef@mail.example.org"} {
		for what, fn := range map[string]func(string) error{"AddContact": add, "UpdateContact": update} {
			err := fn(email)
			if !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), "the directory's bounce address") {
				t.Errorf("%s %s: %v, want the bounce address refused", what, email, err)
			}
		}
	}
	if f.serial() != before {
		t.Fatal("a refused contact was written")
	}
	// Another mailbox of that domain, and one whose local part only
	// starts the same, are anyone's.
	for _, email := range []string{"returnsx@mail.example.org", "returns@example.org"} {
		if err := add(email); err != nil {
			t.Errorf("AddContact %s: %v", email, err)
		}
	}
	f.s.opts.BounceAddress = ""
	if err := add("returns+1@mail.example.org"); err != nil {
		t.Errorf("with no bounce address configured: %v", err)
	}
}

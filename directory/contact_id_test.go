package directory

import (
	"errors"
	"testing"
)

// ContactByID finds a contact by its id after its address changed, and
// not once it is removed, even when another contact has its old address.
func TestContactByID(t *testing.T) {
	f := newFixture(t)
	f.populate()
	var id int64
	if _, err := f.s.Update(f.ctx, Operator, func(tx *Tx) error {
		c, err := tx.UpdateContact("ana@dns.pt", func(c *Contact) error { c.Email = "ana.moved@dns.pt"; return nil })
		id = c.ID
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Update(f.ctx, Operator, func(tx *Tx) error {
		c, err := tx.ContactByID(id)
		if err != nil || c.Email != "ana.moved@dns.pt" {
			t.Fatalf("ContactByID = %+v, %v", c, err)
		}
		if _, err := tx.RemoveContact("ana.moved@dns.pt"); err != nil {
			return err
		}
		if _, err := tx.ContactByID(id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("removed: %v", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

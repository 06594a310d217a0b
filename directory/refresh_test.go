package directory

import (
	"errors"
	"strings"
	"testing"
)

// RefreshKey takes a newer copy of the registered key (same fingerprint)
// as its own ledger entry, which verify replays; it refuses a contact
// without a key and another fingerprint.
func TestRefreshKey(t *testing.T) {
	f := newFixture(t)
	f.populate()
	const fpr = "AAAA000000000000000000000000000000000001"
	e := f.update(func(tx *Tx) error {
		_, err := tx.RefreshKey("ana@dns.pt", &Key{Fingerprint: fpr, Armored: "k1, refreshed", Expires: "2028-10-19T00:00:00Z"})
		return err
	})
	if len(e) != 1 || e[0].Op != opKeyRefresh {
		t.Fatalf("entries %+v", e)
	}
	c, err := f.s.Contact(f.ctx, "ana@dns.pt")
	if err != nil || c.Key.Armored != "k1, refreshed" || c.Key.Expires != "2028-10-19T00:00:00Z" {
		t.Fatalf("%+v %v", c.Key, err)
	}
	if _, err := f.verify(); err != nil {
		t.Fatal(err)
	}
	before := f.serial()
	for _, tc := range []struct {
		email string
		key   Key
		want  error
	}{
		{"ana@dns.pt", Key{Fingerprint: "BBBB000000000000000000000000000000000002", Armored: "k2"}, ErrPolicy},
		{"ivan@cctld.ru", Key{Fingerprint: fpr, Armored: "k1"}, ErrPolicy},
		{"ana@dns.pt", *c.Key, ErrUnchanged},
	} {
		_, err := f.s.Update(f.ctx, Operator, func(tx *Tx) error { _, err := tx.RefreshKey(tc.email, &tc.key); return err })
		if !errors.Is(err, tc.want) {
			t.Errorf("RefreshKey(%s, %s) = %v, want %v", tc.email, tc.key.Fingerprint, err, tc.want)
		}
	}
	if f.serial() != before {
		t.Fatal("a refused refresh wrote an entry")
	}
}

// A contact's key is at most MaxKeyBytes armored, wherever it is set: a
// key that big would be copied into every entry that sets or refreshes
// it and into every digest.
func TestContactKeySizeCap(t *testing.T) {
	f := newFixture(t)
	f.populate()
	const fpr = "AAAA000000000000000000000000000000000001"
	big := strings.Repeat("k", MaxKeyBytes+1)
	before := f.serial()
	for name, op := range map[string]func(tx *Tx) error{
		"RefreshKey": func(tx *Tx) error {
			_, err := tx.RefreshKey("ana@dns.pt", &Key{Fingerprint: fpr, Armored: big})
			return err
		},
		"SetKey": func(tx *Tx) error {
			_, err := tx.SetKey("ivan@cctld.ru", &Key{Fingerprint: "CCCC000000000000000000000000000000000003", Armored: big})
			return err
		},
		"AddContact": func(tx *Tx) error {
			_, err := tx.AddContact(Contact{Email: "rui@dns.pt", Name: "Rui", Phones: []Phone{{Number: "+351213141516"}},
				Roles: []Role{{TLD: "pt", Role: RoleAdmin}}, Key: &Key{Fingerprint: "DDDD000000000000000000000000000000000004", Armored: big}})
			return err
		},
		"UpdateContact": func(tx *Tx) error {
			_, err := tx.UpdateContact("ivan@cctld.ru", func(c *Contact) error {
				c.Key = &Key{Fingerprint: "EEEE000000000000000000000000000000000005", Armored: big}
				return nil
			})
			return err
		},
	} {
		_, err := f.s.Update(f.ctx, Operator, func(tx *Tx) error { return op(tx) })
		if !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), "at most 64 KiB") {
			t.Errorf("%s with a key of %d bytes: %v", name, len(big), err)
		}
	}
	if f.serial() != before {
		t.Fatal("a refused key wrote an entry")
	}
	// At the cap it is taken.
	f.update(func(tx *Tx) error {
		_, err := tx.RefreshKey("ana@dns.pt", &Key{Fingerprint: fpr, Armored: big[:MaxKeyBytes]})
		return err
	})
}

// RefreshKey does not take the fingerprint label on trust: the key must
// have that primary fingerprint (through Options.Fingerprints) and keep
// every subkey of the registered copy.
func TestRefreshKeyChecksTheKey(t *testing.T) {
	f := newFixture(t)
	f.populate()
	f.s.opts.Fingerprints = func(armored string) ([]string, error) { return strings.Fields(armored), nil }
	const fpr = "AAAA000000000000000000000000000000000001"
	const sub1, sub2 = "5AB1000000000000000000000000000000000001", "5AB2000000000000000000000000000000000002"
	refresh := func(armored string) error {
		_, err := f.s.Update(f.ctx, Operator, func(tx *Tx) error {
			_, err := tx.RefreshKey("ana@dns.pt", &Key{Fingerprint: fpr, Armored: armored})
			return err
		})
		return err
	}
	if err := refresh(fpr + " " + sub1 + " " + sub2); err != nil {
		t.Fatal(err)
	}
	before := f.serial()
	for armored, want := range map[string]string{
		"BBBB000000000000000000000000000000000002 " + sub1 + " " + sub2: "is not key " + fpr,
		fpr + " " + sub1: "drops its subkey " + sub2,
	} {
		if err := refresh(armored); !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), want) {
			t.Errorf("refresh to %q: %v, want %q", armored, err, want)
		}
	}
	if f.serial() != before {
		t.Fatal("a refused refresh wrote an entry")
	}
	if err := refresh(fpr + " " + sub1 + " " + sub2 + " 5AB3000000000000000000000000000000000003"); err != nil {
		t.Fatalf("a new subkey: %v", err)
	}
}

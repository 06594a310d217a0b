package directory

import (
	"errors"
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

package directory

import (
	"errors"
	"strings"
	"testing"
)

// The directory's own key, or a key that shares a subkey with it, is
// never a contact's: SetKey, AddContact, UpdateContact and RefreshKey
// refuse it, and nothing is written.
func TestOwnKeyRefused(t *testing.T) {
	f := newFixture(t)
	f.populate()
	own := f.signer.Fingerprint()
	const ourSub = "DDDD00000000000000000000000000000000000D"
	const fpr = "AAAA000000000000000000000000000000000001" // ana's
	f.s.opts.Fingerprints = func(armored string) ([]string, error) {
		switch armored {
		case "test": // the fixture's directory key
			return []string{own, ourSub}, nil
		case "ours bound to another key":
			return []string{"CCCC00000000000000000000000000000000000C", ourSub}, nil
		case "ana's, with our subkey":
			return []string{fpr, ourSub}, nil
		}
		return []string{strings.Fields(armored)[0]}, nil
	}
	before := f.serial()
	dirKey := &Key{Fingerprint: own, Armored: "test"}
	sub := &Key{Fingerprint: "CCCC00000000000000000000000000000000000C", Armored: "ours bound to another key"}
	for name, fn := range map[string]func(tx *Tx) (Contact, error){
		"SetKey own": func(tx *Tx) (Contact, error) { return tx.SetKey("ivan@cctld.ru", dirKey) },
		"SetKey sub": func(tx *Tx) (Contact, error) { return tx.SetKey("ivan@cctld.ru", sub) },
		"Refresh sub": func(tx *Tx) (Contact, error) {
			return tx.RefreshKey("ana@dns.pt", &Key{Fingerprint: fpr, Armored: "ana's, with our subkey"})
		},
		"AddContact": func(tx *Tx) (Contact, error) {
			return tx.AddContact(Contact{Email: "new@dns.pt", Name: "New", Phones: []Phone{{Number: "+351213141599"}},
				Roles: []Role{{TLD: "pt", Role: RoleAdmin}}, Key: dirKey})
		},
		"UpdateContact": func(tx *Tx) (Contact, error) {
			return tx.UpdateContact("ivan@cctld.ru", func(c *Contact) error { c.Key = sub; return nil })
		},
	} {
		_, err := f.s.Update(f.ctx, Operator, func(tx *Tx) error { _, err := fn(tx); return err })
		if !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), "directory's own key") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if f.serial() != before {
		t.Fatal("a refused key was written")
	}
	// Without the hook, the primary fingerprint is still compared.
	f.s.opts.Fingerprints = nil
	_, err := f.s.Update(f.ctx, Operator, func(tx *Tx) error { _, err := tx.SetKey("ivan@cctld.ru", dirKey); return err })
	if !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), "is the directory's own key, not a contact's") {
		t.Errorf("without Fingerprints: %v", err)
	}
}

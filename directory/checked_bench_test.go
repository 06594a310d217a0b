package directory

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// benchDirectory makes a directory of n contacts (each with a key of the
// size of a real armored one, in 10 ccTLDs), one ledger entry each.
func benchDirectory(b *testing.B, n int) *fixture {
	b.Helper()
	f := newFixtureWith(b, nil)
	armored := strings.Repeat("A", 3000)
	tlds := []string{"pt", "br", "nl", "jp", "de", "uk", "fr", "ca", "cl", "mx"}
	_, err := f.s.Update(context.Background(), Operator, func(tx *Tx) error {
		for _, tld := range tlds {
			if _, err := tx.AddMember(Member{TLD: tld, Org: "Registry " + tld}); err != nil {
				return err
			}
		}
		for i := range n {
			_, err := tx.AddContact(Contact{Email: fmt.Sprintf("c%d@nic.%s", i, tlds[i%10]), Name: fmt.Sprintf("Contact %d", i),
				Phones: []Phone{{Number: "+351 21 234 5678"}}, Roles: []Role{{TLD: tlds[i%10], Role: "admin"}},
				Key: &Key{Fingerprint: fmt.Sprintf("%040X", i+1), Armored: armored}})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// BenchmarkChecked measures what the ledger check costs at 2000
// contacts: Checked on a store that has not checked this head yet (a
// process's first read: the whole replay), Checked at a head it checked
// (the cache), and an operator's one change (Update, whose first entry
// checks the tables it starts from).
func BenchmarkChecked(b *testing.B) {
	const n = 2000
	f := benchDirectory(b, n)
	ctx := context.Background()
	fpr, verify := f.signer.Fingerprint(), f.signer.Verify
	b.Run("first", func(b *testing.B) {
		for b.Loop() {
			f.s.cacheMu.Lock()
			f.s.checked = nil
			f.s.cacheMu.Unlock()
			snap, err := f.s.Checked(ctx, fpr, verify)
			if err != nil || len(snap.Contacts) != n {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			if _, err := f.s.Checked(ctx, fpr, verify); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("update", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			_, err := f.s.Update(ctx, Operator, func(tx *Tx) error {
				_, err := tx.UpdateContact("c7@nic.ca", func(c *Contact) error { c.Name = fmt.Sprintf("Contact 7 %d", i); return nil })
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

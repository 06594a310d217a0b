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
// contacts: a process's first check (the whole replay), a check at a head
// this Store replayed (Tx.Check, or Checked at a new head after this
// Store's own commit: the tables compared with the kept replay), Checked
// at a head it checked (the snapshot kept), an operator's one change
// (Update, whose first entry checks the tables it starts from), and a
// mail that changes something (Tx.Check, then Checked for the view).
func BenchmarkChecked(b *testing.B) {
	const n = 2000
	f := benchDirectory(b, n)
	ctx := context.Background()
	fpr, verify := f.signer.Fingerprint(), f.signer.Verify
	forget := func(replay bool) {
		f.s.cacheMu.Lock()
		f.s.checked = nil
		f.s.cacheMu.Unlock()
		if replay {
			f.s.replayMu.Lock()
			if f.s.replay != nil {
				f.s.replay.close()
				f.s.replay = nil
			}
			f.s.replayMu.Unlock()
		}
	}
	checked := func(b *testing.B) {
		snap, err := f.s.Checked(ctx, fpr, verify)
		if err != nil || len(snap.Contacts) != n {
			b.Fatal(err)
		}
	}
	b.Run("replay", func(b *testing.B) {
		for b.Loop() {
			forget(true)
			checked(b)
		}
	})
	b.Run("compare", func(b *testing.B) {
		for b.Loop() {
			forget(false)
			checked(b)
		}
	})
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			checked(b)
		}
	})
	i := 0
	change := func(tx *Tx) error {
		i++
		_, err := tx.UpdateContact("c7@nic.ca", func(c *Contact) error { c.Name = fmt.Sprintf("Contact 7 %d", i); return nil })
		return err
	}
	b.Run("update", func(b *testing.B) {
		for b.Loop() {
			if _, err := f.s.Update(ctx, Operator, change); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mail", func(b *testing.B) {
		for b.Loop() {
			_, err := f.s.Update(ctx, Operator, func(tx *Tx) error {
				if err := tx.Check(fpr, verify); err != nil {
					return err
				}
				if _, err := f.s.Checked(ctx, fpr, verify); err != nil {
					return err
				}
				return change(tx)
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

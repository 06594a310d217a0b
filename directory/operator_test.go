package directory

import (
	"errors"
	"strings"
	"testing"
)

// The operator's address and key (Options.Operator) are never a
// contact's: AddContact, UpdateContact (a new email or key) and SetKey
// refuse them, a key sharing a subkey with the operator's too, and
// nothing is written.
func TestOperatorReserved(t *testing.T) {
	f := newFixture(t)
	f.populate()
	const opFpr = "EEEE00000000000000000000000000000000000E"
	const opSub = "EEEE00000000000000000000000000000000001E"
	f.s.opts.Operator = Reserved{Email: "ops@secretariat.example", Fingerprints: []string{opFpr, opSub}}
	f.s.opts.Fingerprints = func(armored string) ([]string, error) {
		if armored == "test" {
			return []string{f.signer.Fingerprint()}, nil
		}
		return strings.Fields(armored), nil
	}
	before := f.serial()
	opKey := &Key{Fingerprint: opFpr, Armored: opFpr}
	withSub := &Key{Fingerprint: "CCCC00000000000000000000000000000000000C", Armored: "CCCC00000000000000000000000000000000000C " + opSub}
	for name, tc := range map[string]struct {
		fn   func(tx *Tx) (Contact, error)
		want string
	}{
		"AddContact address": {func(tx *Tx) (Contact, error) {
			return tx.AddContact(Contact{Email: "OPS@secretariat.example", Name: "Ops", Phones: []Phone{{Number: "+351213141599"}},
				Roles: []Role{{TLD: "pt", Role: RoleAdmin}}})
		}, "is the operator's address, not a contact's"},
		"UpdateContact address": {func(tx *Tx) (Contact, error) {
			return tx.UpdateContact("ivan@cctld.ru", func(c *Contact) error { c.Email = "ops@secretariat.example"; return nil })
		}, "is the operator's address, not a contact's"},
		"UpdateContact +tag address": {func(tx *Tx) (Contact, error) {
			return tx.UpdateContact("ivan@cctld.ru", func(c *Contact) error { c.Email = "ops+ru@secretariat.example"; return nil })
		}, "ops+ru@secretariat.example is delivered to the operator's address ops@secretariat.example, not a contact's"},
		"AddContact key": {func(tx *Tx) (Contact, error) {
			return tx.AddContact(Contact{Email: "new@dns.pt", Name: "New", Phones: []Phone{{Number: "+351213141599"}},
				Roles: []Role{{TLD: "pt", Role: RoleAdmin}}, Key: opKey})
		}, "is the operator's key"},
		"SetKey":     {func(tx *Tx) (Contact, error) { return tx.SetKey("ivan@cctld.ru", opKey) }, "is the operator's key"},
		"SetKey sub": {func(tx *Tx) (Contact, error) { return tx.SetKey("ivan@cctld.ru", withSub) }, "shares the key " + opSub},
		"UpdateContact key": {func(tx *Tx) (Contact, error) {
			return tx.UpdateContact("ivan@cctld.ru", func(c *Contact) error { c.Key = opKey; return nil })
		}, "is the operator's key"},
	} {
		_, err := f.s.Update(f.ctx, Operator, func(tx *Tx) error { _, err := tc.fn(tx); return err })
		if !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	if f.serial() != before {
		t.Fatal("a refused contact was written")
	}
}

// OperatorActor names the operator by the rules of names, at most
// MaxOperatorName characters.
func TestOperatorActor(t *testing.T) {
	for in, want := range map[string]string{
		"Ana  Operadora":        "operator:Ana Operadora",
		" rita ":                "operator:rita",
		strings.Repeat("a", 64): "operator:" + strings.Repeat("a", 64),
	} {
		a, err := OperatorActor(in)
		if err != nil || a.Name != want || a.Evidence != nil {
			t.Errorf("OperatorActor(%q) = %q, %v; want %q", in, a.Name, err, want)
		}
	}
	for _, in := range []string{"", "ana\x01", "ana\u200b", "ana\u202e", strings.Repeat("a", 65), "=cmd"} {
		if a, err := OperatorActor(in); err == nil {
			t.Errorf("OperatorActor(%q) = %q, want an error", in, a.Name)
		}
	}
}

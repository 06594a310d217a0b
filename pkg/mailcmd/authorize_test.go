package mailcmd

import (
	"slices"
	"testing"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys/keystest"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// An admin of an inactive ccTLD who also serves an active one may change
// the contacts of the active one only (issue 10, #13): authorization is
// per ccTLD, with that ccTLD's status, for every command that changes a
// ccTLD's contacts; the sender's own entry stays the sender's.
func TestAuthorizePerCCTLD(t *testing.T) {
	f := newFixture(t)
	// cn is inactive; Carol, admin of the active br, is its admin too; Li
	// is its security contact.
	li := keystest.NewSecret(t, "Li Wei", "li@cnnic.cn")
	li.SetClock(f.now)
	f.members["li@cnnic.cn"] = &member{email: "li@cnnic.cn", secret: li}
	_, err := f.store.Update(f.ctx, directory.Operator, func(tx *directory.Tx) error {
		if _, err := tx.AddMember(directory.Member{TLD: "cn", Org: "CNNIC", Status: directory.StatusInactive}); err != nil {
			return err
		}
		if _, err := tx.AddContact(directory.Contact{Email: "li@cnnic.cn", Name: "Li Wei",
			Phones: []directory.Phone{{Number: "+861058813000"}},
			Roles:  []directory.Role{{TLD: "cn", Role: directory.RoleSecurity}}, Key: dirKey(t, li.Public())}); err != nil {
			return err
		}
		_, err := tx.UpdateContact("carol@registro.br", func(c *directory.Contact) error {
			c.SetRole("cn", directory.RoleAdmin)
			return nil
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	newKey := keystest.NewSecret(t, "New Person", "new@cnnic.cn")
	newKey.SetClock(f.now)
	armored, err := newKey.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	att := pgpmime.Part{ContentType: "application/pgp-keys", Filename: "new.asc", Body: armored}

	refused := []struct{ name, text string }{
		{"remove a contact", "REMOVE-CONTACT cn li@cnnic.cn\n"},
		{"add a new contact", "ADD-CONTACT cn new@cnnic.cn +861058813001 New Person\n"},
		{"add a contact of another ccTLD", "ADD-CONTACT cn erin@denic.de +4969272350 Erin Weber\n"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			before := f.serial()
			res := f.handle(f.accepted("carol@registro.br", c.text, att))
			if !res.Failed || f.serial() != before || len(res.Entries) != 0 {
				t.Fatalf("ran: failed %v, serial %d → %d", res.Failed, before, f.serial())
			}
			mustContain(t, f.reply("carol@registro.br").text, "FAILED: cn is inactive in the directory")
		})
	}
	if c, err := f.store.Contact(f.ctx, "li@cnnic.cn"); err != nil || c.RoleFor("cn") != directory.RoleSecurity {
		t.Fatalf("li: %+v %v", c, err)
	}
	if c, err := f.store.Contact(f.ctx, "erin@denic.de"); err != nil || c.RoleFor("cn") != "" {
		t.Fatalf("erin: %+v %v", c, err)
	}

	// The same admin still changes the contacts of the active br, and its
	// own entry.
	allowed := []struct{ name, text string }{
		{"add a contact of another ccTLD to the active one", "ADD-CONTACT br erin@denic.de +4969272350 Erin Weber\n"},
		{"remove it again", "REMOVE-CONTACT br erin@denic.de\n"},
		{"own entry", "SET NAME Carol Souza Lima\n"},
	}
	for _, c := range allowed {
		t.Run(c.name, func(t *testing.T) {
			res := f.handle(f.accepted("carol@registro.br", c.text))
			if res.Failed || len(res.Entries) != 1 {
				t.Fatalf("failed %v: %v", res.Failed, res.Results[0].Err)
			}
		})
	}

	// A contact of the inactive ccTLD only (which the pipeline refuses
	// anyway) runs nothing, not even its own changes.
	t.Run("contact of an inactive ccTLD only", func(t *testing.T) {
		before := f.serial()
		res := f.handle(f.accepted("li@cnnic.cn", "SET NAME Li Wei Changed\n"))
		if !res.Failed || f.serial() != before {
			t.Fatalf("ran: failed %v, serial %d → %d", res.Failed, before, f.serial())
		}
	})
}

// A contact whose every role is at an inactive ccTLD gets no directory
// data: not the notice of a change to a colleague's entry
// (directory.Snapshot.Reachable), while the contacts of the active
// ccTLD are told as before (issue 10 review).
func TestInactiveContactNotNotified(t *testing.T) {
	f := newFixture(t)
	li := keystest.NewSecret(t, "Li Wei", "li@cnnic.cn")
	li.SetClock(f.now)
	_, err := f.store.Update(f.ctx, directory.Operator, func(tx *directory.Tx) error {
		if _, err := tx.AddMember(directory.Member{TLD: "cn", Org: "CNNIC", Status: directory.StatusInactive}); err != nil {
			return err
		}
		if _, err := tx.AddContact(directory.Contact{Email: "li@cnnic.cn", Name: "Li Wei",
			Phones: []directory.Phone{{Number: "+861058813000"}},
			Roles:  []directory.Role{{TLD: "cn", Role: directory.RoleSecurity}}, Key: dirKey(t, li.Public())}); err != nil {
			return err
		}
		if _, err := tx.UpdateContact("erin@denic.de", func(c *directory.Contact) error {
			c.SetRole("cn", directory.RoleSecurity) // and of the active de
			return nil
		}); err != nil {
			return err
		}
		_, err := tx.UpdateContact("carol@registro.br", func(c *directory.Contact) error {
			c.SetRole("cn", directory.RoleAdmin)
			return nil
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	res := f.handle(f.accepted("carol@registro.br", "SET PHONE +5511987654321\n"))
	if slices.Contains(res.Notified, "li@cnnic.cn") {
		t.Errorf("li, a contact of the inactive cn only, got the notice of carol's new phone: %v", res.Notified)
	}
	if !slices.Contains(res.Notified, "erin@denic.de") {
		t.Errorf("erin, of cn and the active de, was not told: %v", res.Notified)
	}
}

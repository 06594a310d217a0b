package mailcmd

import (
	"testing"

	"github.com/ccdir/ccdir/keys/keystest"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// An admin cannot add one of the directory's own addresses as a contact
// by mail: the refusal is the directory's (Tx.AddContact), as for the CLI.
func TestAddContactOwnAddress(t *testing.T) {
	f := newFixture(t)
	for _, addr := range []string{dirAddress, "ccdir-sendkey@directory.example", "ccdir+x@directory.example"} {
		sec := keystest.NewSecret(t, "Loop", addr)
		sec.SetClock(f.now)
		armored, err := sec.Public().Armored()
		if err != nil {
			t.Fatal(err)
		}
		att := pgpmime.Part{ContentType: "application/pgp-keys", Filename: "loop.asc", Body: armored}
		before := f.serial()
		res := f.handle(f.accepted("bob@dns.pt", "ADD-CONTACT pt "+addr+" +351213141599 Loop Back\n", att))
		if !res.Failed || f.serial() != before {
			t.Fatalf("%s: result %+v, serial %d → %d", addr, res, before, f.serial())
		}
		mustContain(t, f.reply("bob@dns.pt").text, "FAILED: "+addr+" is ", ", not a contact's")
	}
}

package mailcmd

import (
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
)

// TestWhoamiChanged: WHOAMI labels the signed entry's Confirmed field
// (the time of its last ledger change) "Changed", so it is not read as
// the last answer to a reachability check.
func TestWhoamiChanged(t *testing.T) {
	f := newFixture(t)
	f.handle(f.accepted("bob@dns.pt", "WHOAMI\n"))
	r := f.reply("bob@dns.pt")
	mustContain(t, r.text, "\nChanged:     20")
	if strings.Contains(r.text, "Confirmed:") {
		t.Errorf("WHOAMI still labels the last change Confirmed:\n%s", r.text)
	}
}

// TestWhoamiKeyExpiresSubkey: WHOAMI's "Key expires" is when the key
// stops working (keys.Public.UsableUntil): bob extended his primary key
// by 400 days but not his encryption subkey, which expires in 20; the
// directory records the primary key's expiry, WHOAMI gives the
// subkey's.
func TestWhoamiKeyExpiresSubkey(t *testing.T) {
	f := newFixture(t)
	day := 24 * time.Hour
	primary, sub := fixedNow.Add(400*day).Truncate(time.Second), fixedNow.Add(20*day).Truncate(time.Second)
	pub, err := keys.ParsePublicOne(keystest.Reexpire(t, f.members["bob@dns.pt"].secret, fixedNow.Add(-time.Hour), primary, sub))
	if err != nil {
		t.Fatal(err)
	}
	k := dirKey(t, pub)
	if _, err := f.store.Update(f.ctx, directory.Operator, func(tx *directory.Tx) error {
		_, err := tx.SetKey("bob@dns.pt", k)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got, _ := k.ExpiresAt(); !got.Equal(primary) {
		t.Fatalf("recorded expiry %v, want the primary key's %v", got, primary)
	}
	f.handle(f.accepted("bob@dns.pt", "WHOAMI\n"))
	r := f.reply("bob@dns.pt")
	mustContain(t, r.text, "\nKey expires: "+sub.Format(time.DateOnly)+"\n")

	// Past the subkey's expiry the key is shown expired on that date
	// (the reply goes nowhere then; the text is what WHOAMI says).
	if got, ok := keyEnd(k, fixedNow.Add(30*day)); !ok || !got.Equal(sub) {
		t.Fatalf("keyEnd after the subkey expired = %v, %v; want %v", got, ok, sub)
	}
}

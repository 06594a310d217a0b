package liveness

import (
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
)

// setExpiry refreshes email's key so that it expires at exp, its
// subkeys too.
func (f *fixture) setExpiry(email string, exp time.Time) {
	f.t.Helper()
	f.setExpiries(email, exp, exp)
}

// setExpiries refreshes email's key with new self-signatures: its
// primary key expires at primary, its subkeys at sub (zero: never).
func (f *fixture) setExpiries(email string, primary, sub time.Time) {
	f.t.Helper()
	pub, err := keys.ParsePublicOne(keystest.Reexpire(f.t, f.secrets[email], f.now(), primary, sub))
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.store.Update(f.ctx, directory.Operator, func(tx *directory.Tx) error {
		_, err := tx.RefreshKey(email, dirKey(f.t, pub))
		return err
	}); err != nil {
		f.t.Fatal(err)
	}
}

func remindedDays(res *Result, email string) []int {
	var d []int
	for _, k := range res.KeyReminders {
		if k.Email == email {
			d = append(d, k.Days)
		}
	}
	return d
}

// A key is reminded of at each threshold once; two thresholds reached
// at once give one reminder, for the nearest; a refresh with a later
// expiry starts over; an expired key gets none and is listed.
func TestKeyExpiryReminders(t *testing.T) {
	f := newFixture(t)
	exp := start.Add(65 * 24 * time.Hour)
	f.setExpiry("ana@dns.pt", exp)
	f.setExpiry("carol@registro.br", start.Add(20*24*time.Hour))
	res := f.send(Config{})
	if d := remindedDays(res, "ana@dns.pt"); d != nil {
		t.Fatalf("ana reminded 65 days before: %v", d)
	}
	if d := remindedDays(res, "carol@registro.br"); len(d) != 1 || d[0] != 30 {
		t.Fatalf("carol (20 days left) reminded at %v, want [30]", d)
	}
	f.advance(5 * 24 * time.Hour) // 60 days left
	res = f.send(Config{})
	if d := remindedDays(res, "ana@dns.pt"); len(d) != 1 || d[0] != 60 {
		t.Fatalf("ana at 60 days: %v", d)
	}
	if n := len(res.KeyReminders); n != 1 {
		t.Fatalf("reminders at day 5: %+v", res.KeyReminders)
	}
	if n := len(f.send(Config{}).KeyReminders); n != 0 {
		t.Fatalf("a rerun sent %d reminders", n)
	}
	ts := f.texts(KindKeyAlert, "ana@dns.pt")
	if len(ts) != 1 {
		t.Fatalf("%d reminders to ana", len(ts))
	}
	for _, want := range []string{f.secrets["ana@dns.pt"].Fingerprint(), exp.Format(time.DateOnly), "\nDIRECTORY " + dirAddress + "\nKEY-REFRESH\n"} {
		if !strings.Contains(ts[0], want) {
			t.Fatalf("reminder lacks %q:\n%s", want, ts[0])
		}
	}
	f.advance(30 * 24 * time.Hour) // ana 30 left, carol expired
	res = f.send(Config{})
	if d := remindedDays(res, "ana@dns.pt"); len(d) != 1 || d[0] != 30 {
		t.Fatalf("ana at 30 days: %v", d)
	}
	if len(res.Expired) != 1 || res.Expired[0].Email != "carol@registro.br" || remindedDays(res, "carol@registro.br") != nil {
		t.Fatalf("carol's expired key: %+v %+v", res.Expired, res.KeyReminders)
	}
	if n := len(f.texts(KindKeyAlert, "carol@registro.br")); n != 1 {
		t.Fatalf("carol got %d reminders", n)
	}
	// Refreshed with a later expiry: the thresholds start over.
	f.setExpiry("ana@dns.pt", f.now().Add(50*24*time.Hour))
	if d := remindedDays(f.send(Config{}), "ana@dns.pt"); len(d) != 1 || d[0] != 60 {
		t.Fatalf("ana after the refresh: %v", d)
	}
	// keys.remind_days of its own.
	f.advance(45 * 24 * time.Hour) // 5 days left
	if d := remindedDays(f.send(Config{RemindDays: []int{10}}), "ana@dns.pt"); len(d) != 1 || d[0] != 10 {
		t.Fatalf("ana with remind_days 10: %v", d)
	}
}

// The expiry reminded of is when the key stops working: the encryption
// subkey's, when it is earlier than the primary key's (which the
// directory records) or the primary key never expires; a refresh that
// extends only the primary key goes on being reminded of, one that
// extends the subkeys too stops the reminders.
func TestKeyExpirySubkey(t *testing.T) {
	f := newFixture(t)
	sub := start.Add(25 * 24 * time.Hour)
	f.setExpiries("ana@dns.pt", time.Time{}, sub)                        // primary never expires
	f.setExpiries("carol@registro.br", start.Add(400*24*time.Hour), sub) // primary extended alone
	res := f.send(Config{})
	for _, email := range []string{"ana@dns.pt", "carol@registro.br"} {
		if d := remindedDays(res, email); len(d) != 1 || d[0] != 30 {
			t.Fatalf("%s (subkey expires in 25 days) reminded at %v, want [30]", email, d)
		}
		ts := f.texts(KindKeyAlert, email)
		if len(ts) != 1 {
			t.Fatalf("%d reminders to %s", len(ts), email)
		}
		fpr := f.secrets[email].Fingerprint()
		for _, want := range []string{"expires on " + sub.Format(time.DateOnly), "subkey",
			"gpg --quick-set-expire " + fpr + " 1y\n", "gpg --quick-set-expire " + fpr + " 1y '*'\n"} {
			if !strings.Contains(ts[0], want) {
				t.Fatalf("reminder to %s lacks %q:\n%s", email, want, ts[0])
			}
		}
	}
	// Carol extends the subkeys too: no more reminders. Ana extends
	// her primary key only: the 7-day one still comes.
	f.setExpiries("carol@registro.br", start.Add(400*24*time.Hour), start.Add(400*24*time.Hour))
	f.setExpiries("ana@dns.pt", start.Add(400*24*time.Hour), sub)
	f.advance(20 * 24 * time.Hour) // 5 days before the subkeys expire
	res = f.send(Config{})
	if d := remindedDays(res, "carol@registro.br"); d != nil {
		t.Fatalf("carol reminded after extending the subkeys: %v", d)
	}
	if d := remindedDays(res, "ana@dns.pt"); len(d) != 1 || d[0] != 7 {
		t.Fatalf("ana (subkey in 5 days) reminded at %v, want [7]", d)
	}
	// Past the subkey's expiry: listed as expired, on the subkey's date.
	f.advance(10 * 24 * time.Hour)
	res = f.send(Config{})
	if len(res.Expired) != 1 || res.Expired[0].Email != "ana@dns.pt" || res.Expired[0].Expires != sub.Format(time.RFC3339) {
		t.Fatalf("expired: %+v", res.Expired)
	}
}

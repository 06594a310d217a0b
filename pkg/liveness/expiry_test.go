package liveness

import (
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
)

// setExpiry records exp as the expiry of email's key (a refresh).
func (f *fixture) setExpiry(email string, exp time.Time) {
	f.t.Helper()
	if _, err := f.store.Update(f.ctx, directory.Operator, func(tx *directory.Tx) error {
		k := dirKey(f.t, f.secrets[email].Public())
		k.Expires = exp.UTC().Format(time.RFC3339)
		_, err := tx.RefreshKey(email, k)
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

package export

import (
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
)

// subkeySnapshot is a directory of one member whose one security
// contact's real key has its primary key extended to primary and its
// subkey expiring at sub; the directory records the primary key's
// expiry, as it does.
func subkeySnapshot(t *testing.T, primary, sub time.Time) *directory.Snapshot {
	t.Helper()
	sec := keystest.NewSecret(t, "Ana Sousa", "ana@dns.pt")
	pub, err := keys.ParsePublicOne(keystest.Reexpire(t, sec, digestNow.Add(-time.Hour), primary, sub))
	if err != nil {
		t.Fatal(err)
	}
	a, err := pub.Armored()
	if err != nil {
		t.Fatal(err)
	}
	k := &directory.Key{Fingerprint: pub.Fingerprint, Created: pub.Created.UTC().Format(time.RFC3339),
		Expires: pub.Expires.UTC().Format(time.RFC3339), Armored: string(a)}
	if !pub.Expires.Equal(primary) {
		t.Fatalf("recorded expiry %v, want the primary key's %v", pub.Expires, primary)
	}
	return &directory.Snapshot{
		Info:    directory.Info{Name: "Test Directory", Address: "directory@ccdir.example"},
		Head:    directory.Head{Serial: 3, Hash: strings.Repeat("ab", 32)},
		Time:    digestNow.Format(time.RFC3339),
		Members: []directory.Member{{TLD: "pt", Org: "DNS.PT", Country: "PT", Status: "active"}},
		Contacts: []directory.Contact{{ID: 1, Email: "ana@dns.pt", Name: "Ana Sousa",
			Phones: []directory.Phone{{Number: "+351212345678"}},
			Roles:  []directory.Role{{TLD: "pt", Role: "security"}}, Key: k}},
	}
}

// flat is text with every run of white space one space: a note is
// wrapped.
func flat(text string) string { return strings.Join(strings.Fields(text), " ") }

// A digest judges a key by when it stops working (KeyCheck.Until, by
// default keys.Public.UsableUntil of the armored key), not by the
// primary key's expiry the directory records: Ana extended her primary
// key by 400 days, not her encryption subkey, which expires in 20; the
// note to her and the change list give the subkey's date.
func TestKeyCheckSubkeyExpiring(t *testing.T) {
	day := 24 * time.Hour
	primary, sub := digestNow.Add(400*day), digestNow.Add(20*day)
	s := subkeySnapshot(t, primary, sub)
	c := &s.Contacts[0]
	on := sub.Format(time.DateOnly)
	fp := keys.GroupFingerprint(c.Key.Fingerprint)

	note := KeyNote(c, digestNow, 0, KeyCheck{})
	if !strings.Contains(flat(note), "Your OpenPGP key "+fp+" expires on "+on+".") {
		t.Errorf("note = %q, want the subkey's date %s", note, on)
	}
	changes := Diff(s, s, digestNow, KeyCheck{})
	if len(changes) != 1 || changes[0].Kind != ChangeKeyExpiring || changes[0].Detail != fp+" expires on "+on {
		t.Errorf("changes = %v, want one key expiring on %s", changes, on)
	}
	// As the digest passes it: its key cache's verdict, here a usable
	// key that stops working at sub, while the armored text is another.
	check := KeyCheck{
		Usable: func(*directory.Contact) error { return nil },
		Until:  func(*directory.Contact) (time.Time, bool) { return sub, true },
	}
	fake := *c
	fake.Key = &directory.Key{Fingerprint: c.Key.Fingerprint, Expires: c.Key.Expires, Armored: fakeKey("ana")}
	if got := KeyNote(&fake, digestNow, 0, check); !strings.Contains(flat(got), " expires on "+on+".") {
		t.Errorf("note with the digest's check = %q, want %s", got, on)
	}
	// A key that cannot be read, with no Until that tells: its recorded
	// expiry.
	if got := KeyNote(&fake, digestNow, 0, KeyCheck{}); got != "" {
		t.Errorf("note of an unreadable key recorded to expire in 400 days = %q, want none", got)
	}
	var b strings.Builder
	if err := WriteBody(&b, s, BodyOptions{Now: digestNow, Recipient: c}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(flat(b.String()), " expires on "+on+".") || !strings.Contains(b.String(), "1 with a usable key") {
		t.Errorf("body:\n%s", b.String())
	}
}

// Once the subkey has expired the key has stopped working, though its
// primary key has not: the note says it expired on the subkey's date,
// the body does not count it usable, and coverage without a key check
// of its own does not count the ccTLD covered.
func TestKeyCheckSubkeyExpired(t *testing.T) {
	day := 24 * time.Hour
	primary, sub := digestNow.Add(400*day), digestNow.Add(-5*day)
	s := subkeySnapshot(t, primary, sub)
	c := &s.Contacts[0]
	on := sub.Format(time.DateOnly)

	if note := KeyNote(c, digestNow, 0, KeyCheck{}); !strings.Contains(flat(note), " expired on "+on+",") {
		t.Errorf("note = %q, want expired on %s", note, on)
	}
	changes := Diff(s, s, digestNow, KeyCheck{})
	if len(changes) != 1 || changes[0].Kind != ChangeKeyUnusable || !strings.HasSuffix(changes[0].Detail, " expired on "+on) {
		t.Errorf("changes = %v, want the key unusable, expired on %s", changes, on)
	}
	var b strings.Builder
	if err := WriteBody(&b, s, BodyOptions{Now: digestNow}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "0 with a usable key") {
		t.Errorf("body counts the key usable:\n%s", b.String())
	}
	cov := ComputeCoverage(s, lookup(t, "pt"), nil)
	if cov.Covered != 0 || len(cov.Rows) != 1 || cov.Rows[0].Problem != ProblemNoKey {
		t.Errorf("coverage = %+v, want pt not covered: no usable key", cov.Rows)
	}
	// Before the subkey expired (the head earlier), it was covered.
	s.Time = sub.Add(-day).Format(time.RFC3339)
	if cov := ComputeCoverage(s, lookup(t, "pt"), nil); cov.Covered != 1 {
		t.Errorf("coverage at a head before the subkey expired = %+v, want covered", cov.Rows)
	}
}

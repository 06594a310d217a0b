package keys_test

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
)

var uidNow = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)

// gpgEncryptTo encrypts a line to addr with gpg, finding the key by
// that address, and reports gpg's output and error.
func gpgEncryptTo(g *keystest.GPGHome, addr string) (string, error) {
	stdout, stderr, err := g.RunInput([]byte("hello\n"), "--trust-model", "always", "--armor", "--encrypt", "-r", addr)
	return string(stdout) + string(stderr), err
}

func TestGenerateKeyUserIDs(t *testing.T) {
	s, err := keys.GenerateKey(keys.KeySpec{Name: "TLD-OPS directory", Emails: []string{"ccdir@tldops.example", "Alerts@tldops.example"},
		Lifetime: 2 * 365 * 24 * time.Hour, Now: uidNow})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Emails(); !slices.Equal(got, []string{"ccdir@tldops.example", "alerts@tldops.example"}) {
		t.Errorf("Emails() = %q", got)
	}
	want := uidNow.Add(-keys.KeyBackdate).Add(2 * 365 * 24 * time.Hour)
	if !s.Expires().Equal(want) {
		t.Errorf("Expires() = %v, want %v", s.Expires(), want)
	}
	if err := s.Public().Check(want.Add(-time.Hour)); err != nil {
		t.Errorf("Check before the expiry: %v", err)
	}
	if err := s.Public().Check(want.Add(time.Hour)); err == nil {
		t.Error("Check after the expiry: no error")
	}
	g := keystest.GPG(t)
	pub, err := s.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	g.Import(pub)
	for _, addr := range []string{"ccdir@tldops.example", "alerts@tldops.example"} {
		if out, err := gpgEncryptTo(g, addr); err != nil || !strings.Contains(out, "BEGIN PGP MESSAGE") {
			t.Errorf("gpg -r %s: %v\n%s", addr, err, out)
		}
	}
	out, _ := g.MustRun("--with-colons", "--list-keys", s.Fingerprint())
	if !bytes.Contains(out, []byte("<ccdir@tldops.example>")) || !bytes.Contains(out, []byte("<Alerts@tldops.example>")) {
		t.Errorf("gpg lists:\n%s", out)
	}
	// pub:...:expiry: field 7 is the expiry.
	if !bytes.Contains(out, []byte(":"+strconv.FormatInt(want.Unix(), 10)+":")) {
		t.Errorf("gpg does not list the expiry %d:\n%s", want.Unix(), out)
	}

	for _, bad := range [][]string{nil, {"a@x.example", "A@x.example"}, {"not-an-address"}} {
		if _, err := keys.GenerateKey(keys.KeySpec{Name: "D", Emails: bad, Now: uidNow}); err == nil {
			t.Errorf("GenerateKey(%q): no error", bad)
		}
	}
	if _, err := keys.GenerateKey(keys.KeySpec{Name: "D", Emails: []string{"a@x.example"}, Lifetime: -time.Hour}); err == nil {
		t.Error("negative lifetime: no error")
	}
}

// TestWithUserIDs: an existing one-address key gets a user ID for the
// list (gpg, which had the old copy, finds it by the list's address
// after importing the new one), keeps its fingerprint and expiry, and
// a room's address added then dropped is revoked, as gpg shows.
func TestWithUserIDs(t *testing.T) {
	old, err := keys.GenerateKey(keys.KeySpec{Name: "TLD-OPS directory", Emails: []string{"ccdir@tldops.example"},
		Lifetime: 365 * 24 * time.Hour, Now: uidNow})
	if err != nil {
		t.Fatal(err)
	}
	g := keystest.GPG(t)
	pub, _ := old.Public().Armored()
	g.Import(pub)
	if out, err := gpgEncryptTo(g, "alerts@tldops.example"); err == nil {
		t.Fatalf("gpg found the old key by the list's address:\n%s", out)
	}

	later := uidNow.Add(24 * time.Hour)
	s, ch, err := old.WithUserIDs("TLD-OPS directory", []string{"ccdir@tldops.example", "alerts@tldops.example"}, later)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ch.Added, []string{"alerts@tldops.example"}) || len(ch.Revoked) != 0 {
		t.Errorf("change = %+v", ch)
	}
	if s.Fingerprint() != old.Fingerprint() || !s.Expires().Equal(old.Expires()) {
		t.Errorf("fingerprint %s expiry %v, want %s %v", s.Fingerprint(), s.Expires(), old.Fingerprint(), old.Expires())
	}
	if got := old.Emails(); !slices.Equal(got, []string{"ccdir@tldops.example"}) {
		t.Errorf("the old key changed: %q", got)
	}
	pub, _ = s.Public().Armored()
	g.Import(pub)
	if out, err := gpgEncryptTo(g, "alerts@tldops.example"); err != nil {
		t.Errorf("gpg -r alerts@ after the import: %v\n%s", err, out)
	}
	// The signatures of the new copy still verify with the old copy.
	data := []byte("ledger entry")
	sig, err := s.Sign(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Verify(data, sig); err != nil {
		t.Errorf("old copy does not verify the new copy's signature: %v", err)
	}

	// Nothing to do: the same key, no change.
	same, ch, err := s.WithUserIDs("TLD-OPS directory", []string{"ccdir@tldops.example", "ALERTS@tldops.example"}, later)
	if err != nil || same != s || ch.Changed() {
		t.Errorf("no-op WithUserIDs: %v %+v (same %v)", err, ch, same == s)
	}

	// A room opens and closes.
	room := "room-7@tldops.example"
	withRoom, ch, err := s.WithUserIDs("TLD-OPS directory", []string{"ccdir@tldops.example", "alerts@tldops.example", room}, later)
	if err != nil || !slices.Equal(ch.Added, []string{room}) {
		t.Fatalf("add room: %v %+v", err, ch)
	}
	closed, ch, err := withRoom.WithUserIDs("TLD-OPS directory", []string{"ccdir@tldops.example", "alerts@tldops.example"}, later)
	if err != nil || !slices.Equal(ch.Revoked, []string{room}) {
		t.Fatalf("close room: %v %+v", err, ch)
	}
	if got := closed.Emails(); slices.Contains(got, room) {
		t.Errorf("closed room still in %q", got)
	}
	pub, _ = withRoom.Public().Armored()
	g.Import(pub)
	if out, err := gpgEncryptTo(g, room); err != nil {
		t.Errorf("gpg -r room: %v\n%s", err, out)
	}
	pub, _ = closed.Public().Armored()
	g.Import(pub)
	if out, err := gpgEncryptTo(g, room); err == nil {
		t.Errorf("gpg still encrypts to the closed room:\n%s", out)
	}
	out, _ := g.MustRun("--with-colons", "--list-keys", s.Fingerprint())
	if !bytes.Contains(out, []byte("uid:r:")) {
		t.Errorf("gpg shows no revoked user ID:\n%s", out)
	}
	// Reopened: certified again after the revocation.
	reopened, ch, err := closed.WithUserIDs("TLD-OPS directory", []string{"ccdir@tldops.example", "alerts@tldops.example", room}, later)
	if err != nil || !slices.Equal(ch.Added, []string{room}) || !slices.Contains(reopened.Emails(), room) {
		t.Fatalf("reopen room: %v %+v %q", err, ch, reopened.Emails())
	}

	if _, _, err := s.WithUserIDs("TLD-OPS directory", []string{"alerts@tldops.example"}, later); err == nil {
		t.Error("another primary address: no error")
	}
}

func TestWithExpiry(t *testing.T) {
	s, err := keys.GenerateKey(keys.KeySpec{Name: "TLD-OPS directory", Emails: []string{"ccdir@tldops.example", "alerts@tldops.example"},
		Lifetime: 30 * 24 * time.Hour, Now: uidNow})
	if err != nil {
		t.Fatal(err)
	}
	exp := uidNow.AddDate(2, 0, 0)
	r, err := s.WithExpiry(exp, uidNow.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !r.Expires().Equal(exp) {
		t.Errorf("Expires() = %v, want %v", r.Expires(), exp)
	}
	if err := r.Public().Check(uidNow.AddDate(1, 0, 0)); err != nil {
		t.Errorf("renewed key a year on: %v", err)
	}
	if got := r.Emails(); len(got) != 2 {
		t.Errorf("Emails() = %q", got)
	}
	never, err := r.WithExpiry(time.Time{}, uidNow.Add(2*time.Hour))
	if err != nil || !never.Expires().IsZero() {
		t.Errorf("no expiry: %v %v", err, never.Expires())
	}
	g := keystest.GPG(t)
	pub, _ := r.Public().Armored()
	g.Import(pub)
	out, _ := g.MustRun("--with-colons", "--list-keys", r.Fingerprint())
	if !bytes.Contains(out, []byte(":"+strconv.FormatInt(exp.Unix(), 10)+":")) {
		t.Errorf("gpg does not list the renewed expiry %d:\n%s", exp.Unix(), out)
	}
	if _, err := s.WithExpiry(uidNow.AddDate(-1, 0, 0), uidNow); err == nil {
		t.Error("expiry before creation: no error")
	}
}

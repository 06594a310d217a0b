package mailcmd

import (
	"bytes"
	"crypto"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

func expiringConfig(at time.Time, life time.Duration) *packet.Config {
	return &packet.Config{Time: func() time.Time { return at }, Algorithm: packet.PubKeyAlgoEdDSA, Curve: packet.Curve25519,
		DefaultHash: crypto.SHA256, KeyLifetimeSecs: uint32(life / time.Second)}
}

func entityPublic(t *testing.T, e *openpgp.Entity) *keys.Public {
	t.Helper()
	var b bytes.Buffer
	if err := e.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	p, err := keys.ParsePublicOne(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func keyPart(t *testing.T, p *keys.Public) pgpmime.Part {
	t.Helper()
	a, err := p.Armored()
	if err != nil {
		t.Fatal(err)
	}
	return pgpmime.Part{ContentType: "application/pgp-keys", Filename: "key.asc", Body: a}
}

// A member extends her expiring key by mail: KEY-REFRESH with the newer
// copy (same fingerprint) is a key.refresh entry that takes effect at
// once and is announced; the same copy again changes nothing; another
// key is refused (that is KEY-ROTATE); KEY-ROTATE with the same key
// points to KEY-REFRESH.
func TestKeyRefresh(t *testing.T) {
	f := newFixture(t)
	year := 365 * 24 * time.Hour
	made := fixedNow.Add(-330 * 24 * time.Hour)
	e, err := openpgp.NewEntity("Fay Lopes", "", "fay@dns.pt", expiringConfig(made, year))
	if err != nil {
		t.Fatal(err)
	}
	old := entityPublic(t, e)
	if _, err := f.store.Update(f.ctx, directory.Operator, func(tx *directory.Tx) error {
		_, err := tx.AddContact(directory.Contact{Email: "fay@dns.pt", Name: "Fay Lopes", Phones: []directory.Phone{{Number: "+351213141519"}},
			Roles: []directory.Role{{TLD: "pt", Role: "security"}}, Key: dirKey(t, old)})
		return err
	}); err != nil {
		t.Fatal(err)
	}

	// gpg --quick-set-expire: new self-signatures, three years from made.
	at := fixedNow.Add(-time.Hour)
	cfg := expiringConfig(at, 3*year)
	secs := uint32(3 * year / time.Second)
	for _, id := range e.Identities {
		sig := id.SelfCertifications[0].Packet
		sig.CreationTime, sig.KeyLifetimeSecs = at, &secs
		if err := sig.SignUserId(id.UserId.Id, e.PrimaryKey, e.PrivateKey, cfg); err != nil {
			t.Fatal(err)
		}
	}
	for _, sk := range e.Subkeys {
		sig := sk.Bindings[0].Packet
		sig.CreationTime, sig.KeyLifetimeSecs = at, &secs
		if err := sig.SignKey(sk.PublicKey, e.PrivateKey, cfg); err != nil {
			t.Fatal(err)
		}
	}
	fresh := keyPart(t, entityPublic(t, e))

	before := f.serial()
	res := f.handle(f.accepted("fay@dns.pt", "KEY-REFRESH\n", fresh))
	if res.Failed || len(res.Entries) != 1 || res.Entries[0].Op != "key.refresh" {
		t.Fatalf("result %+v, err %v", res, res.Results[0].Err)
	}
	want := "done: key " + old.Fingerprint + " refreshed: expires " + made.Add(3*year).UTC().Format(time.DateOnly) +
		" (was: " + made.Add(year).UTC().Format(time.DateOnly) + ")"
	if got := res.Results[0].Text; got != want {
		t.Errorf("text %q, want %q", got, want)
	}
	c, err := f.store.Contact(f.ctx, "fay@dns.pt")
	if err != nil || c.Key.Fingerprint != old.Fingerprint || c.Key.Expires != made.Add(3*year).UTC().Format(time.RFC3339) {
		t.Fatalf("%+v %v", c.Key, err)
	}
	if !strings.Contains(strings.Join(res.Notified, ","), "alice@dns.pt") {
		t.Errorf("notified %v", res.Notified)
	}
	if f.serial() != before+1 {
		t.Fatalf("serial %d, want %d", f.serial(), before+1)
	}

	// The same copy again (or the old one): nothing newer, nothing written.
	for _, att := range []pgpmime.Part{fresh, keyPart(t, old)} {
		res = f.handle(f.accepted("fay@dns.pt", "KEY-REFRESH\n", att))
		if res.Failed || len(res.Entries) != 0 || !strings.HasPrefix(res.Results[0].Text, "unchanged: the attached copy of your key "+old.Fingerprint+" is not newer") {
			t.Fatalf("not newer: %+v %q", res, res.Results[0].Text)
		}
	}

	// Another key is not a refresh.
	other := keystest.NewSecret(t, "Fay Lopes", "fay@dns.pt")
	res = f.handle(f.accepted("fay@dns.pt", "KEY-REFRESH\n", keyPart(t, other.Public())))
	if !res.Failed || len(res.Entries) != 0 || res.Results[0].Err.Error() != "attached key "+other.Fingerprint()+" is not yours; to change to it, use KEY-ROTATE" {
		t.Fatalf("other key: %+v %v", res, res.Results[0].Err)
	}
	// KEY-ROTATE with the registered key says to use KEY-REFRESH.
	res = f.handle(f.accepted("fay@dns.pt", "KEY-ROTATE\n", fresh))
	if !res.Failed || res.Results[0].Err.Error() != "key "+old.Fingerprint+" is your current key; for a newer copy of it, send KEY-REFRESH" {
		t.Fatalf("rotate to the same key: %+v %v", res, res.Results[0].Err)
	}
	for _, r := range res.Results {
		if r.Err != nil && len([]rune(r.Err.Error())) > maxEcho {
			t.Errorf("refusal longer than a reply shows: %q", r.Err)
		}
	}
	// Without an attachment.
	res = f.handle(f.accepted("fay@dns.pt", "KEY-REFRESH\n"))
	if !res.Failed || !strings.Contains(res.Results[0].Err.Error(), "no key is attached; attach a newer copy of your key") {
		t.Fatalf("no attachment: %+v %v", res, res.Results[0].Err)
	}
	if f.serial() != before+1 {
		t.Fatalf("serial %d, want %d", f.serial(), before+1)
	}
	mustContain(t, helpText(dirAddress, "", DefaultChangeDelay), "KEY-REFRESH               attach a newer copy of your current key")
}

// A member whose key is compromised sends KEY-REFRESH, signed with the
// key as still registered, with the copy that carries its revocation:
// the revocation is taken (it can only disable) as a key.refresh entry;
// the member gets no reply (there is no key left to encrypt it to), the
// other contacts of the ccTLD are told, encrypted, and a later mail
// signed by the key is refused as by a revoked key.
func TestKeyRefreshRevocation(t *testing.T) {
	f := newFixture(t)
	e, err := openpgp.NewEntity("Fay Lopes", "", "fay@dns.pt", expiringConfig(fixedNow.Add(-30*24*time.Hour), 0))
	if err != nil {
		t.Fatal(err)
	}
	old := entityPublic(t, e)
	if _, err := f.store.Update(f.ctx, directory.Operator, func(tx *directory.Tx) error {
		_, err := tx.AddContact(directory.Contact{Email: "fay@dns.pt", Name: "Fay Lopes", Phones: []directory.Phone{{Number: "+351213141519"}},
			Roles: []directory.Role{{TLD: "pt", Role: "security"}}, Key: dirKey(t, old)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	a := f.accepted("fay@dns.pt", "KEY-REFRESH\n") // signed before the revocation reaches the directory
	if err := e.Revoke(packet.KeyCompromised, "laptop stolen", expiringConfig(fixedNow.Add(-time.Hour), 0)); err != nil {
		t.Fatal(err)
	}
	revoked := entityPublic(t, e)
	a.Attachments = []pgpmime.Part{keyPart(t, revoked)}

	before := f.serial()
	replies := f.count(KindReply)
	res := f.handle(a)
	if res.Failed || len(res.Entries) != 1 || res.Entries[0].Op != "key.refresh" {
		t.Fatalf("result %+v, err %v", res, res.Results[0].Err)
	}
	mustContain(t, res.Results[0].Text, "key "+old.Fingerprint+" revoked on ", "(key compromised: \"laptop stolen\") by its owner",
		"fay@dns.pt gets nothing encrypted", "until the operator registers a new key")
	c, err := f.store.Contact(f.ctx, "fay@dns.pt")
	if err != nil || c.Key.Fingerprint != old.Fingerprint {
		t.Fatalf("%+v %v", c.Key, err)
	}
	reg, err := keys.ParsePublicOne([]byte(c.Key.Armored))
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Check(f.now()); !errors.Is(err, keys.ErrRevoked) || !keys.Unusable(err) {
		t.Fatalf("registered key after the refresh: %v", err)
	}
	if f.serial() != before+1 {
		t.Fatalf("serial %d, want %d", f.serial(), before+1)
	}
	// Nothing to fay (no key to encrypt to); the others are told.
	if res.Replied || res.ReplyErr == nil || !keys.Unusable(res.ReplyErr) || f.count(KindReply) != replies {
		t.Errorf("reply: replied %v, err %v", res.Replied, res.ReplyErr)
	}
	if len(f.bodies(KindNotify, "fay@dns.pt")) != 0 {
		t.Error("a notice went to the revoked key")
	}
	if !slices.Contains(res.Notified, "alice@dns.pt") {
		t.Fatalf("notified %v", res.Notified)
	}
	n := f.bodies(KindNotify, "alice@dns.pt")
	mustContain(t, f.open(n[len(n)-1], f.members["alice@dns.pt"].secret).text, "fay@dns.pt (pt): key "+old.Fingerprint+" revoked on ")
}

// A refresh that leaves the key stopping before its primary key expires
// (the subkey not extended: gpg --quick-set-expire FPR 1y without '*'),
// or no later than the registered copy did, is taken, and the reply says
// which subkey still expires when, and the command that extends it; a
// refresh of the key and its subkeys says nothing more.
func TestKeyRefreshSubkeyWarning(t *testing.T) {
	f := newFixture(t)
	sec := f.members["alice@dns.pt"].secret
	fpr := sec.Fingerprint()
	day := 24 * time.Hour
	refresh := func(at, primary, sub time.Time) string {
		t.Helper()
		armored := keystest.Reexpire(t, sec, at, primary, sub)
		res := f.handle(f.accepted("alice@dns.pt", "KEY-REFRESH\n", pgpmime.Part{ContentType: "application/pgp-keys", Filename: "key.asc", Body: armored}))
		if res.Failed || len(res.Entries) != 1 || res.Entries[0].Op != "key.refresh" {
			t.Fatalf("result %+v, %q", res, res.Results[0].Text)
		}
		return res.Results[0].Text
	}
	hint := "run gpg --quick-set-expire " + fpr + " 1y '*' and send KEY-REFRESH again"
	sub := fixedNow.Add(40 * day)

	// The primary key extended, the encryption subkey not.
	text := refresh(fixedNow.Add(-3*time.Hour), fixedNow.Add(400*day), sub)
	mustContain(t, text, "done: key "+fpr+" refreshed: expires "+fixedNow.Add(400*day).Format(time.DateOnly),
		"your encryption subkey still expires on "+sub.Format(time.DateOnly)+": "+hint)
	// The primary key never expires: the subkey is what stops it.
	text = refresh(fixedNow.Add(-2*time.Hour), time.Time{}, sub)
	mustContain(t, text, "your encryption subkey still expires on "+sub.Format(time.DateOnly)+": "+hint)
	// Both extended: nothing more to do.
	text = refresh(fixedNow.Add(-time.Hour), fixedNow.Add(400*day), fixedNow.Add(400*day))
	if strings.Contains(text, "still expires") {
		t.Errorf("warned after a full refresh: %q", text)
	}
	// Both shortened (a newer copy, yet usable no longer than before).
	text = refresh(fixedNow.Add(-time.Minute), fixedNow.Add(300*day), fixedNow.Add(300*day))
	mustContain(t, text, "your key still expires on "+fixedNow.Add(300*day).Format(time.DateOnly)+", no later than the registered copy")
}

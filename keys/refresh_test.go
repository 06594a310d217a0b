package keys

import (
	"bytes"
	"crypto"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"
)

var refreshT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func refreshConfig(at time.Time, life time.Duration) *packet.Config {
	return &packet.Config{
		Time:            func() time.Time { return at },
		Algorithm:       packet.PubKeyAlgoEdDSA,
		Curve:           packet.Curve25519,
		DefaultHash:     crypto.SHA256,
		KeyLifetimeSecs: uint32(life / time.Second),
	}
}

// expiringEntity is an Ed25519 key with a Curve25519 encryption subkey,
// made at refreshT0, both expiring after life.
func expiringEntity(t *testing.T, name, email string, life time.Duration) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", email, refreshConfig(refreshT0, life))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func publicOf(t *testing.T, e *openpgp.Entity) *Public {
	t.Helper()
	var b bytes.Buffer
	if err := e.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	p, err := ParsePublicOne(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// extend gives every user ID and subkey of e a new self-signature made at
// at, with the key lifetime life (what gpg --quick-set-expire does). The
// old signatures are replaced in e.
func extend(t *testing.T, e *openpgp.Entity, at time.Time, life time.Duration) {
	t.Helper()
	cfg := refreshConfig(at, life)
	secs := uint32(life / time.Second)
	for _, id := range e.Identities {
		sig := id.SelfCertifications[len(id.SelfCertifications)-1].Packet
		sig.CreationTime, sig.KeyLifetimeSecs = at, &secs
		if err := sig.SignUserId(id.UserId.Id, e.PrimaryKey, e.PrivateKey, cfg); err != nil {
			t.Fatal(err)
		}
	}
	for _, sk := range e.Subkeys {
		sig := sk.Bindings[len(sk.Bindings)-1].Packet
		sig.CreationTime, sig.KeyLifetimeSecs = at, &secs
		if err := sig.SignKey(sk.PublicKey, e.PrivateKey, cfg); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRefreshExtendsExpiry(t *testing.T) {
	year := 365 * 24 * time.Hour
	e := expiringEntity(t, "Ana Sousa", "ana@dns.pt", year)
	old := publicOf(t, e)
	if want := refreshT0.Add(year); !old.Expires.Equal(want) {
		t.Fatalf("old expires %v, want %v", old.Expires, want)
	}
	later := refreshT0.Add(330 * 24 * time.Hour)
	extend(t, e, later, 3*year)
	upd := publicOf(t, e)

	merged, err := old.Refresh(upd)
	if err != nil {
		t.Fatal(err)
	}
	if merged.Fingerprint != old.Fingerprint {
		t.Fatalf("fingerprint %s", merged.Fingerprint)
	}
	if want := refreshT0.Add(3 * year); !merged.Expires.Equal(want) {
		t.Errorf("merged expires %v, want %v", merged.Expires, want)
	}
	// Usable after the old expiry, encryption subkey included.
	if err := merged.Check(refreshT0.Add(400 * 24 * time.Hour)); err != nil {
		t.Errorf("merged key after the old expiry: %v", err)
	}
	if err := old.Check(refreshT0.Add(400 * 24 * time.Hour)); !errors.Is(err, ErrExpired) {
		t.Errorf("old key after its expiry: %v, want expired", err)
	}
	// The later self-signature supersedes the earlier one: only it is kept.
	id := merged.Entity().Identities["Ana Sousa <ana@dns.pt>"]
	if id == nil || len(id.SelfCertifications) != 1 || !id.SelfCertifications[0].Packet.CreationTime.Equal(later) {
		t.Fatalf("merged user ID %+v", id)
	}
	if old.Expires.Equal(merged.Expires) {
		t.Error("old key changed")
	}

	// The same copy again, or the old copy after the new one: nothing newer.
	if _, err := merged.Refresh(upd); !errors.Is(err, ErrNotNewer) {
		t.Errorf("same copy again: %v, want ErrNotNewer", err)
	}
	if _, err := merged.Refresh(old); !errors.Is(err, ErrNotNewer) {
		t.Errorf("older copy: %v, want ErrNotNewer", err)
	}
	if _, err := old.Refresh(old); !errors.Is(err, ErrNotNewer) {
		t.Errorf("itself: %v, want ErrNotNewer", err)
	}
	// Another key is not a refresh.
	other := publicOf(t, expiringEntity(t, "Ana Sousa", "ana@dns.pt", year))
	if _, err := old.Refresh(other); !errors.Is(err, ErrOtherKey) {
		t.Errorf("other key: %v, want ErrOtherKey", err)
	}
}

func TestRefreshNewSubkey(t *testing.T) {
	year := 365 * 24 * time.Hour
	e := expiringEntity(t, "Piet", "piet@sidn.nl", year)
	old := publicOf(t, e)
	if err := e.AddEncryptionSubkey(refreshConfig(refreshT0.Add(time.Hour), 2*year)); err != nil {
		t.Fatal(err)
	}
	merged, err := old.Refresh(publicOf(t, e))
	if err != nil {
		t.Fatal(err)
	}
	if len(merged.Entity().Subkeys) != 2 {
		t.Fatalf("%d subkeys", len(merged.Entity().Subkeys))
	}
	if err := merged.Check(refreshT0.Add(2 * time.Hour)); err != nil {
		t.Errorf("check: %v", err)
	}
	if _, err := merged.Refresh(publicOf(t, e)); !errors.Is(err, ErrNotNewer) {
		t.Errorf("same subkey again: %v, want ErrNotNewer", err)
	}
}

// Signatures that do not verify with the key's own primary key are not
// taken: a user ID certified by another key, a self-signature over other
// data. Neither makes a refresh.
func TestRefreshIgnoresForeignAndBadSignatures(t *testing.T) {
	year := 365 * 24 * time.Hour
	e := expiringEntity(t, "Dan Costa", "dan@registro.br", year)
	old := publicOf(t, e)
	mallory := expiringEntity(t, "Mallory", "mallory@example.org", year)
	at := refreshT0.Add(time.Hour)
	cfg := refreshConfig(at, year)

	// A new user ID certified by Mallory's key only.
	uid := packet.NewUserId("Dan Costa", "", "dan@evil.example")
	sig := &packet.Signature{Version: 4, SigType: packet.SigTypePositiveCert, PubKeyAlgo: mallory.PrimaryKey.PubKeyAlgo,
		Hash: crypto.SHA256, CreationTime: at, IssuerKeyId: &mallory.PrimaryKey.KeyId}
	if err := sig.SignUserId(uid.Id, e.PrimaryKey, mallory.PrivateKey, cfg); err != nil {
		t.Fatal(err)
	}
	// A "self-signature" of Dan's user ID made over another user ID.
	id := e.Identities["Dan Costa <dan@registro.br>"]
	bad := &packet.Signature{Version: 4, SigType: packet.SigTypePositiveCert, PubKeyAlgo: e.PrimaryKey.PubKeyAlgo,
		Hash: crypto.SHA256, CreationTime: at.Add(time.Hour), IssuerKeyId: &e.PrimaryKey.KeyId}
	if err := bad.SignUserId("Someone Else <x@example.org>", e.PrimaryKey, e.PrivateKey, cfg); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, pkt := range []interface{ Serialize(w io.Writer) error }{e.PrimaryKey, id.UserId, bad, uid, sig} {
		if err := pkt.Serialize(&b); err != nil {
			t.Fatal(err)
		}
	}
	for _, sk := range e.Subkeys {
		if err := sk.PublicKey.Serialize(&b); err != nil {
			t.Fatal(err)
		}
		if err := sk.Bindings[0].Packet.Serialize(&b); err != nil {
			t.Fatal(err)
		}
	}
	upd, err := ParsePublicOne(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Refresh(upd); !errors.Is(err, ErrNotNewer) {
		t.Fatalf("refresh with foreign and bad signatures: %v, want ErrNotNewer", err)
	}
}

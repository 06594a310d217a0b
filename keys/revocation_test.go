package keys

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"
)

// A copy of a key with its owner's revocation (of the key, or of its
// encryption subkey) refreshes the registered copy, which then cannot be
// used; RevocationsSince says what the refresh brought, with the reason.
func TestRefreshTakesRevocations(t *testing.T) {
	at := refreshT0.Add(24 * time.Hour)
	for _, subkey := range []bool{false, true} {
		e := expiringEntity(t, "Ana Sousa", "ana@dns.pt", 0)
		old := publicOf(t, e)
		cfg := refreshConfig(at, 0)
		var err error
		if subkey {
			err = e.Subkeys[0].Revoke(packet.KeyRetired, "", cfg)
		} else {
			err = e.Revoke(packet.KeyCompromised, "laptop stolen", cfg)
		}
		if err != nil {
			t.Fatal(err)
		}
		merged, err := old.Refresh(publicOf(t, e))
		if err != nil {
			t.Fatalf("subkey %v: %v", subkey, err)
		}
		if len(old.Revocations()) != 0 {
			t.Fatalf("old copy has revocations %v", old.Revocations())
		}
		revs := merged.RevocationsSince(old)
		if len(revs) != 1 {
			t.Fatalf("subkey %v: revocations %v", subkey, revs)
		}
		want := `revoked on 2026-01-02 (key compromised: "laptop stolen")`
		wantErr := ErrRevoked
		if subkey {
			want = "subkey " + fingerprint(e.Subkeys[0].PublicKey) + " revoked on 2026-01-02 (key retired)"
			wantErr = ErrNoEncryptionKey
		}
		if got := revs[0].String(); got != want {
			t.Errorf("revocation %q, want %q", got, want)
		}
		if err := merged.Check(at.Add(time.Hour)); !errors.Is(err, wantErr) {
			t.Errorf("subkey %v: merged key checks %v, want %v", subkey, err, wantErr)
		}
		if len(merged.RevocationsSince(merged)) != 0 {
			t.Error("a key brings no revocation to itself")
		}
		if _, err := merged.Refresh(publicOf(t, e)); !errors.Is(err, ErrNotNewer) {
			t.Errorf("the same revocation again: %v", err)
		}
	}
}

// Fingerprints lists the primary key and every subkey, so that a subkey
// of one key bound to another primary key is seen (the directory refuses
// a contact key sharing one with its own, directory.Options.Fingerprints).
func TestFingerprintsSeeBorrowedSubkey(t *testing.T) {
	ours := expiringEntity(t, "Directory", "ccdir@tldops.example", 0)
	e := expiringEntity(t, "Mallory", "mallory@dns.pt", 0)
	borrowed := ours.Subkeys[0].PublicKey
	cfg := refreshConfig(refreshT0.Add(time.Hour), 0)
	sig := &packet.Signature{Version: 4, SigType: packet.SigTypeSubkeyBinding, PubKeyAlgo: e.PrimaryKey.PubKeyAlgo,
		Hash: cfg.DefaultHash, CreationTime: cfg.Now(), IssuerKeyId: &e.PrimaryKey.KeyId, IssuerFingerprint: e.PrimaryKey.Fingerprint,
		FlagsValid: true, FlagEncryptCommunications: true, FlagEncryptStorage: true}
	if err := sig.SignKey(borrowed, e.PrivateKey, cfg); err != nil {
		t.Fatal(err)
	}
	e.Subkeys = append(e.Subkeys, openpgp.Subkey{PublicKey: borrowed, Primary: e, Bindings: []*packet.VerifiableSignature{packet.NewVerifiableSig(sig)}})
	p := publicOf(t, e)
	a, err := p.Armored()
	if err != nil {
		t.Fatal(err)
	}
	fprs, err := Fingerprints(string(a))
	if err != nil {
		t.Fatal(err)
	}
	if len(fprs) != 3 || fprs[0] != p.Fingerprint || fprs[2] != fingerprint(borrowed) {
		t.Fatalf("fingerprints %v, want %s, its subkey, %s", fprs, p.Fingerprint, fingerprint(borrowed))
	}
}

// A bare revocation certificate (one key revocation signature) revokes
// the key that made it, once; another key's certificate, or one that
// claims to be this key's, is refused; a key is not a certificate.
func TestRevocationCert(t *testing.T) {
	cert := func(e *openpgp.Entity, issuer *packet.PublicKey) []byte {
		cfg := refreshConfig(refreshT0.Add(time.Hour), 0)
		reason := packet.KeySuperseded
		sig := &packet.Signature{Version: 4, SigType: packet.SigTypeKeyRevocation, PubKeyAlgo: e.PrimaryKey.PubKeyAlgo,
			Hash: cfg.DefaultHash, CreationTime: cfg.Now(), IssuerKeyId: &issuer.KeyId, IssuerFingerprint: issuer.Fingerprint,
			RevocationReason: &reason}
		if err := sig.RevokeKey(e.PrimaryKey, e.PrivateKey, cfg); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := sig.Serialize(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	ana := expiringEntity(t, "Ana", "ana@dns.pt", 0)
	eve := expiringEntity(t, "Eve", "eve@dns.pt", 0)
	reg := publicOf(t, ana)

	rc, err := ParseRevocationCert(cert(ana, ana.PrimaryKey))
	if err != nil || !rc.Of(reg) || rc.Issuer != reg.Fingerprint {
		t.Fatalf("cert %+v, %v", rc, err)
	}
	revoked, err := reg.Revoke(rc)
	if err != nil {
		t.Fatal(err)
	}
	if err := revoked.Check(refreshT0.Add(2 * time.Hour)); !errors.Is(err, ErrRevoked) {
		t.Fatalf("after the certificate: %v", err)
	}
	if revs := revoked.RevocationsSince(reg); len(revs) != 1 || revs[0].Reason != "key superseded" {
		t.Fatalf("revocations %v", revs)
	}
	if _, err := revoked.Revoke(rc); !errors.Is(err, ErrNotNewer) {
		t.Errorf("the same certificate again: %v", err)
	}
	// Eve's own certificate, and one Eve made naming Ana as its issuer.
	for _, data := range [][]byte{cert(eve, eve.PrimaryKey), cert(eve, ana.PrimaryKey)} {
		rc, err := ParseRevocationCert(data)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Revoke(rc); !errors.Is(err, ErrOtherKey) {
			t.Errorf("someone else's certificate: %v", err)
		}
	}
	a, err := reg.Armored()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseRevocationCert(a); !errors.Is(err, ErrNoKey) {
		t.Errorf("a key read as a certificate: %v", err)
	}
}

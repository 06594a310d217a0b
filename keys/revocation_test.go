package keys

import (
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

package keys

import (
	"bytes"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

func TestVerifier(t *testing.T) {
	now := time.Now()
	a, err := Generate("A", "a@example.org", AlgoEd25519, now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate("B", "b@example.org", AlgoEd25519, now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v, err := a.Public().NewVerifier(now)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("ccdir ledger entry 7 0123\n")
	sig, err := a.Sign(data)
	if err != nil {
		t.Fatal(err)
	}
	// Concurrent use, as ledger verification does.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := v.Verify(data, sig); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	other, err := b.Sign(data)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), data...)
	bad[len(bad)-2] ^= 1
	flipped := append([]byte(nil), sig...)
	flipped[len(flipped)-3] ^= 1
	for name, c := range map[string]struct{ data, sig []byte }{
		"changed data":     {bad, sig},
		"another key":      {data, other},
		"damaged sig":      {data, flipped},
		"trailing garbage": {data, append(append([]byte(nil), sig...), 0xc2, 0x00)},
		"empty":            {data, nil},
	} {
		if err := v.Verify(c.data, c.sig); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: %v, want ErrBadSignature", name, err)
		}
	}
	// The slow path agrees.
	if _, err := a.Public().VerifyAt(data, sig, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkVerifier(b *testing.B) {
	now := time.Now()
	a, err := Generate("A", "a@example.org", AlgoEd25519, now, rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	v, err := a.Public().NewVerifier(now)
	if err != nil {
		b.Fatal(err)
	}
	data := []byte("ccdir ledger entry 7 0123\n")
	sig, _ := a.Sign(data)
	for b.Loop() {
		if err := v.Verify(data, sig); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSecretFileFingerprint(t *testing.T) {
	s, err := Generate("A", "a@example.org", AlgoEd25519, time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, pass := range []string{"", "secret"} {
		path := dir + "/k" + pass
		if err := s.WriteFile(path, []byte(pass)); err != nil {
			t.Fatal(err)
		}
		got, err := SecretFileFingerprint(path)
		if err != nil || got != s.Fingerprint() {
			t.Fatalf("passphrase %q: %q, %v; want %s", pass, got, err, s.Fingerprint())
		}
	}
}

// A user ID without a valid self-signature (anyone can append one to a
// public key) does not give the key its email.
func TestUncertifiedUserIDIsNotAnEmail(t *testing.T) {
	s, err := Generate("Erin", "erin@example.org", AlgoEd25519, time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.Entity().Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	// The forged user ID carries a copy of the genuine one's self-signature,
	// which does not cover it.
	uid := packet.NewUserId("Forged", "", "forged@evil.example")
	if err := uid.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	for _, id := range s.Entity().Identities {
		if err := id.SelfCertifications[0].Packet.Serialize(&buf); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := ParsePublicOne(buf.Bytes())
	if err != nil {
		t.Fatalf("the key with an extra user ID does not parse: %v", err)
	}
	if pub.HasEmail("forged@evil.example") {
		t.Fatal("an uncertified user ID counts as the key's email")
	}
	if !pub.HasEmail("erin@example.org") {
		t.Fatal("the certified user ID was lost")
	}
}

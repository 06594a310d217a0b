package keys

import (
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"
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

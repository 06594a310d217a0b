package keys_test

import (
	"testing"
	"time"

	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
)

// BenchmarkParseCheck parses and checks one armored Ed25519 key, as an
// import of a member's key does.
func BenchmarkParseCheck(b *testing.B) {
	armored, err := keystest.NewSecret(b, "A", "a@b.pt").Public().Armored()
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	b.SetBytes(int64(len(armored)))
	for b.Loop() {
		p, err := keys.ParsePublicOne(armored)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Check(now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignVerify signs 4 KiB and verifies the signature.
func BenchmarkSignVerify(b *testing.B) {
	data := make([]byte, 4096)
	for name, s := range map[string]*keys.Secret{
		"ed25519": keystest.NewSecret(b, "A", "a@b.pt"),
		"rsa3072": rsaKey(b),
	} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				sig, err := s.Sign(data)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Public().Verify(data, sig); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGenerate includes RSA-4096, which the unit tests leave out
// (1.5 to 3 s a key).
func BenchmarkGenerate(b *testing.B) {
	for _, algo := range []keys.Algo{keys.AlgoEd25519, keys.AlgoRSA3072, keys.AlgoRSA4096} {
		b.Run(string(algo), func(b *testing.B) {
			for b.Loop() {
				s, err := keys.Generate("Bench", "bench@b.pt", algo, time.Now(), nil)
				if err != nil {
					b.Fatal(err)
				}
				if s.Public().Algorithm != string(algo) {
					b.Fatalf("made %s", s.Public().Algorithm)
				}
			}
		})
	}
}

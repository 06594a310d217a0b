package liveness

import (
	"bytes"
	"crypto/rand"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
)

// A possession challenge's token looks like a ping token (ValidToken),
// is new each time, and only its hash is what the change keeps.
func TestNewProofToken(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, 32)
	tok, hash, err := NewProofToken(secret, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if !ValidToken(tok) || len(tok) != TokenLen || hash != ProofHash(tok) || hash == ProofHash(tok+"x") || strings.Contains(hash, tok) {
		t.Fatalf("token %q hash %q", tok, hash)
	}
	tok2, _, _ := NewProofToken(secret, rand.Reader)
	if tok2 == tok {
		t.Fatal("two challenges, one token")
	}
	// The same nonce under another secret gives another token.
	a, _, _ := NewProofToken(secret, bytes.NewReader(make([]byte, 16)))
	b, _, _ := NewProofToken(bytes.Repeat([]byte{8}, 32), bytes.NewReader(make([]byte, 16)))
	if a == b {
		t.Fatal("the token does not depend on the secret")
	}
	if _, _, err := NewProofToken(nil, rand.Reader); err == nil {
		t.Fatal("a token without a secret")
	}
}

// The challenge holds the exact CONFIRM line, and says which key to sign
// it with and when the change is due.
func TestProofBody(t *testing.T) {
	info := directory.Info{Name: "TLD-OPS", Address: "ccdir@tldops.example", KeyFingerprint: "DIRFPR"}
	c := &directory.Contact{Email: "ana@dns.pt", Name: "Ana Silva", Key: &directory.Key{Fingerprint: "OLDFPR"}}
	at := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	body := ProofBody(info, info.Address, c, &directory.Key{Fingerprint: "NEWFPR"}, "chg-ab2cd3ef4g", "TOKEN_TOKEN_TOKEN_1234", at, at.Add(72*time.Hour))
	for _, re := range []string{
		`(?m)^CONFIRM chg-ab2cd3ef4g TOKEN_TOKEN_TOKEN_1234$`, `(?m)^DIRECTORY ccdir@tldops\.example$`,
		`the\s+CURRENT key OLDFPR`, `NEWFPR \(change chg-ab2cd3ef4g\)`, `takes effect at 2026-11-05 10:00 UTC`, `VETO chg-ab2cd3ef4g`,
	} {
		if !regexp.MustCompile(re).MatchString(body) {
			t.Errorf("body lacks %s:\n%s", re, body)
		}
	}
}

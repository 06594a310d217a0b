package keys_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
)

// Keys gpg makes with algorithms ccdir does not take are refused naming
// the algorithm and why: DSA and ElGamal (deprecated), secp256k1 (not an
// OpenPGP curve) as unsupported, not weak; no raw algorithm byte from
// go-crypto in the reason.
func TestRefusedAlgorithmsNamed(t *testing.T) {
	g := keystest.GPG(t)
	dsa := g.GenKey("Dan <dan@dsa.example>", "dsa2048", "sign", "never")
	g.AddKey(dsa, "elg2048", "encr", "never")
	elg := g.GenKey("Eli <eli@elg.example>", "ed25519", "sign", "never")
	elgSub := g.AddKey(elg, "elg2048", "encr", "never")
	k1 := g.GenKey("Kay <kay@k1.example>", "secp256k1", "default", "never")
	for _, tc := range []struct {
		name, fpr string
		want      []string
	}{
		{"dsa primary", dsa, []string{"primary key: DSA (dsa2048), a signature algorithm OpenPGP deprecated on security grounds (RFC 9580 §12.5"}},
		{"elgamal subkey", elg, []string{"subkey " + elgSub[len(elgSub)-16:] + ": ElGamal (elg2048), an encryption algorithm OpenPGP deprecated on security grounds (RFC 9580 §12.6"}},
		{"secp256k1", k1, []string{"primary key: curve secp256k1, which is not one of OpenPGP's", "ccdir does not support it"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := keys.ParsePublicOne(g.ExportPublic(tc.fpr))
			if err != nil {
				t.Fatal(err)
			}
			err = p.Check(time.Now())
			if !errors.Is(err, keys.ErrUnsupportedKey) || errors.Is(err, keys.ErrWeakKey) || !keys.Unusable(err) {
				t.Fatalf("Check: %v, want ErrUnsupportedKey and not ErrWeakKey", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Check: %v\nwant %q", err, w)
				}
			}
			if strings.ContainsFunc(err.Error(), func(r rune) bool { return r < ' ' }) {
				t.Errorf("Check: %q has a control character", err)
			}
			if got := keys.Reason(err); got != "key algorithm not supported" {
				t.Errorf("Reason: %q", got)
			}
		})
	}
}

package keys_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
)

// A block of two signatures verifies as good in go-crypto as soon as one
// of them does: VerifyAt takes exactly one, and SplitSignatures gives
// each to check on its own.
func TestVerifyOneSignatureOnly(t *testing.T) {
	a := keystest.NewSecret(t, "A", "a@b.pt")
	b := keystest.NewSecret(t, "B", "b@b.pt")
	data := []byte("DIRECTORY ccdir@b.pt\nKEY-ROTATE\n")
	good, err := a.Sign(data)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := b.Sign([]byte("something else"))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(time.Minute)
	if _, err := a.Public().VerifyAt(data, good, at); err != nil {
		t.Fatalf("one good signature: %v", err)
	}
	both := append(bytes.Clone(bad), good...)
	if _, err := a.Public().VerifyAt(data, both, at); !errors.Is(err, keys.ErrBadSignature) {
		t.Errorf("a bad and a good signature in one block: %v, want ErrBadSignature", err)
	}
	var arm bytes.Buffer
	w, _ := armor.Encode(&arm, "PGP SIGNATURE", nil)
	w.Write(both)
	w.Close()
	for name, block := range map[string][]byte{"binary": both, "armored": arm.Bytes()} {
		sigs, err := keys.SplitSignatures(block)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(sigs) != 2 || !bytes.Equal(sigs[0], bad) || !bytes.Equal(sigs[1], good) {
			t.Fatalf("%s: split into %d signatures, want the two as made", name, len(sigs))
		}
		if _, err := b.Public().VerifyAt(data, sigs[0], at); !errors.Is(err, keys.ErrBadSignature) {
			t.Errorf("%s: the bad one verifies: %v", name, err)
		}
		if _, err := a.Public().VerifyAt(data, sigs[1], at); err != nil {
			t.Errorf("%s: the good one: %v", name, err)
		}
	}
	many := bytes.Repeat(good, keys.MaxSignatures+1)
	if _, err := keys.SplitSignatures(many); err == nil {
		t.Errorf("%d signatures in one block: split", keys.MaxSignatures+1)
	}
	pub, _ := a.Public().Armored()
	if _, err := keys.SplitSignatures(pub); err == nil {
		t.Errorf("a public key block split as signatures")
	}
}

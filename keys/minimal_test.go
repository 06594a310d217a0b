package keys

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"
)

// padSig returns the signature packet of sig with an unhashed private
// subpacket (type 101) of n bytes of v added: what anyone on the way can
// do to a signature without breaking it (no secret needed).
func padSig(t *testing.T, sig *packet.Signature, n int, v byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := sig.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	body, err := packetBody(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if body[0] != 4 {
		t.Fatalf("v%d signature", body[0])
	}
	uo := 6 + (int(body[4])<<8 | int(body[5]))
	ul := int(body[uo])<<8 | int(body[uo+1])
	un := append([]byte{}, body[uo+2:uo+2+ul]...)
	un = append(un, 255, byte((n+1)>>24), byte((n+1)>>16), byte((n+1)>>8), byte(n+1), 101)
	un = append(un, bytes.Repeat([]byte{v}, n)...)
	nb := append([]byte{}, body[:uo]...)
	nb = append(nb, byte(len(un)>>8), byte(len(un)))
	nb = append(append(nb, un...), body[uo+2+ul:]...)
	var out bytes.Buffer
	out.WriteByte(0xc2)
	writeLength(&out, len(nb))
	out.Write(nb)
	return out.Bytes()
}

// padded writes the public key e with dups padded copies (60 KB of junk
// each) after every signature.
func padded(t *testing.T, e *openpgp.Entity, dups int, v byte) []byte {
	t.Helper()
	var genuine bytes.Buffer
	if err := e.Serialize(&genuine); err != nil {
		t.Fatal(err)
	}
	r := packet.NewReader(&genuine)
	var out bytes.Buffer
	for {
		p, err := r.Next()
		if err == io.EOF {
			return out.Bytes()
		}
		if err != nil {
			t.Fatal(err)
		}
		switch x := p.(type) {
		case *packet.PublicKey:
			x.Serialize(&out)
		case *packet.UserId:
			x.Serialize(&out)
		case *packet.Signature:
			x.Serialize(&out)
			for i := 0; i < dups; i++ {
				out.Write(padSig(t, x, 60000, v+byte(i)))
			}
		}
	}
}

// The stored form of a key (Armored) keeps no junk from the unhashed
// area of its signatures, and each signature once: a padded copy of a
// key is stored as the key itself, and still works.
func TestArmoredDropsUnhashedJunk(t *testing.T) {
	year := 365 * 24 * time.Hour
	e := expiringEntity(t, "Ana Sousa", "ana@dns.pt", year)
	clean, err := publicOf(t, e).Armored()
	if err != nil {
		t.Fatal(err)
	}
	in := padded(t, e, 3, 'a')
	if len(in) < 300000 {
		t.Fatalf("padded key of %d bytes", len(in))
	}
	p, err := ParsePublicOne(in)
	if err != nil {
		t.Fatal(err)
	}
	arm, err := p.Armored()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(arm, clean) {
		t.Fatalf("padded key stored as %d bytes, the key itself is %d", len(arm), len(clean))
	}
	back, err := ParsePublicOne(arm)
	if err != nil {
		t.Fatal(err)
	}
	if err := back.Check(refreshT0.Add(time.Hour)); err != nil {
		t.Fatalf("stored key: %v", err)
	}
	// The issuer subpackets a reader needs stay.
	for _, id := range back.Entity().Identities {
		s := id.SelfCertifications[0].Packet
		if s.IssuerKeyId == nil || len(s.IssuerFingerprint) == 0 {
			t.Errorf("issuer dropped: %v %x", s.IssuerKeyId, s.IssuerFingerprint)
		}
	}
}

// A signing subkey's binding carries the subkey's back-signature
// (embedded): it is kept, and junk added to it is dropped.
func TestArmoredKeepsBackSignature(t *testing.T) {
	year := 365 * 24 * time.Hour
	e := expiringEntity(t, "Ana Sousa", "ana@dns.pt", year)
	if err := e.AddSigningSubkey(refreshConfig(refreshT0, year)); err != nil {
		t.Fatal(err)
	}
	p := publicOf(t, e)
	arm, err := p.Armored()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParsePublicOne(arm)
	if err != nil {
		t.Fatal(err)
	}
	sk := back.Entity().Subkeys[1]
	if sk.Bindings[0].Packet.EmbeddedSignature == nil {
		t.Fatal("back-signature dropped")
	}
	if err := back.Entity().PrimaryKey.VerifyKeySignature(sk.PublicKey, sk.Bindings[0].Packet); err != nil {
		t.Fatalf("binding with its back-signature: %v", err)
	}
	if err := back.Check(refreshT0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
}

// A refresh that brings genuine signatures padded with junk (one new
// signature, copies of it with 60 KB of junk each) stores the key as
// small as the genuine copy would; padded copies of signatures the key
// has are nothing newer.
func TestRefreshPaddedSignatures(t *testing.T) {
	year := 365 * 24 * time.Hour
	e := expiringEntity(t, "Ana Sousa", "ana@dns.pt", year)
	reg := publicOf(t, e)
	if _, err := reg.Refresh(mustParse(t, padded(t, e, 6, 'z'))); !errors.Is(err, ErrNotNewer) {
		t.Fatalf("padded copy of the registered key: %v, want ErrNotNewer", err)
	}
	for step, dups := range []int{6, 1} {
		extend(t, e, refreshT0.Add(time.Duration(step+1)*100*24*time.Hour), time.Duration(step+2)*year)
		genuine, err := publicOf(t, e).Armored()
		if err != nil {
			t.Fatal(err)
		}
		merged, err := reg.Refresh(mustParse(t, padded(t, e, dups, byte('a'+10*step))))
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		arm, err := merged.Armored()
		if err != nil {
			t.Fatal(err)
		}
		if len(arm) > len(genuine)+64 {
			t.Fatalf("step %d: merged key of %d bytes, the genuine copy is %d", step, len(arm), len(genuine))
		}
		if reg, err = ParsePublicOne(arm); err != nil {
			t.Fatalf("step %d: stored copy: %v", step, err)
		}
	}
}

func mustParse(t *testing.T, b []byte) *Public {
	t.Helper()
	ps, err := ParsePublic(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 {
		t.Fatalf("%d keys", len(ps))
	}
	return ps[0]
}

// A merged key whose armored form is over MaxKeyBytes is refused (the
// bound of ParsePublicOne: the stored copy must read again), even when
// its binary form is under it.
func TestRefreshTooLarge(t *testing.T) {
	year := 365 * 24 * time.Hour
	e := expiringEntity(t, "Ana Sousa", "ana@dns.pt", year)
	cfg := refreshConfig(refreshT0.Add(time.Hour), year)
	var a, b bytes.Buffer
	if err := e.Serialize(&a); err != nil {
		t.Fatal(err)
	}
	b.Write(a.Bytes())
	// The owner's own user IDs, certified, half in the registered copy
	// and half in the refresh: each ~0.45 MB binary, ~0.6 MB armored;
	// together ~0.9 MB binary, ~1.2 MB armored.
	pad := strings.Repeat("x", 200)
	for i := 0; a.Len()+b.Len() < 900<<10; i++ {
		w := &a
		if i%2 == 1 {
			w = &b
		}
		uid := packet.NewUserId(fmt.Sprintf("Ana %d %s", i, pad), "", fmt.Sprintf("ana%d@dns.pt", i))
		sig := &packet.Signature{Version: 4, SigType: packet.SigTypePositiveCert, PubKeyAlgo: e.PrimaryKey.PubKeyAlgo, Hash: cfg.Hash(),
			CreationTime: cfg.Now(), IssuerKeyId: &e.PrimaryKey.KeyId}
		if err := sig.SignUserId(uid.Id, e.PrimaryKey, e.PrivateKey, cfg); err != nil {
			t.Fatal(err)
		}
		uid.Serialize(w)
		sig.Serialize(w)
	}
	reg := mustParse(t, a.Bytes())
	_, err := reg.Refresh(mustParse(t, b.Bytes()))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("refresh to a key of %d bytes: %v, want ErrTooLarge", a.Len()+b.Len(), err)
	}
}

// Refreshing a key again and again does not grow it: the merge keeps the
// latest self-signature per user ID and per subkey (and every
// revocation).
func TestRefreshDropsSupersededSelfSignatures(t *testing.T) {
	year := 365 * 24 * time.Hour
	e := expiringEntity(t, "Ana Sousa", "ana@dns.pt", year)
	reg := publicOf(t, e)
	first, _ := reg.Armored()
	var size int
	for i := 1; i <= 6; i++ {
		at := refreshT0.Add(time.Duration(i) * 30 * 24 * time.Hour)
		extend(t, e, at, time.Duration(i+1)*year)
		merged, err := reg.Refresh(publicOf(t, e))
		if err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
		arm, _ := merged.Armored()
		if i > 1 && len(arm) != size {
			t.Fatalf("refresh %d: %d bytes, was %d", i, len(arm), size)
		}
		size = len(arm)
		if reg, err = ParsePublicOne(arm); err != nil {
			t.Fatal(err)
		}
		for u, id := range reg.Entity().Identities {
			if n := len(id.SelfCertifications); n != 1 || !id.SelfCertifications[0].Packet.CreationTime.Equal(at) {
				t.Fatalf("refresh %d: %s has %d self-signatures", i, u, n)
			}
		}
		for _, sk := range reg.Entity().Subkeys {
			if n := len(sk.Bindings); n != 1 || !sk.Bindings[0].Packet.CreationTime.Equal(at) {
				t.Fatalf("refresh %d: subkey has %d bindings", i, n)
			}
		}
		if want := refreshT0.Add(time.Duration(i+1) * year); !reg.Expires.Equal(want) {
			t.Fatalf("refresh %d: expires %v, want %v", i, reg.Expires, want)
		}
	}
	if size > len(first)+64 {
		t.Errorf("after 6 refreshes %d bytes, first copy %d", size, len(first))
	}
	// An older copy is nothing newer, and leaves nothing to drop either.
	if _, err := reg.Refresh(mustParse(t, []byte(first))); !errors.Is(err, ErrNotNewer) {
		t.Errorf("first copy after the refreshes: %v, want ErrNotNewer", err)
	}
}

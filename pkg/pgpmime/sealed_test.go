package pgpmime_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-message/mail"

	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// TestSealedCopies: copies made from one Sealed share one encrypted
// packet, yet each opens only with its own recipient's key, to the signed
// entity, with a valid armor (CRC-24 over the whole message) and lines of
// at most 64 characters; the mail parses like BuildEncrypted's.
func TestSealedCopies(t *testing.T) {
	dir := dirKey(t)
	signed, enc := testEncrypter(t, dir)
	sealed := enc.Seal(chachaRand(1))
	type copyOf struct {
		who mail.Address
		key *keys.Secret
		c   pgpmime.Copy
	}
	var copies []copyOf
	for i, who := range []mail.Address{conceicao, fatima, wangWei, ivan} {
		sec := rcptKey(t, who.Name, who.Address)
		r, err := pgpmime.NewRecipient(sec.Public(), testNow)
		if err != nil {
			t.Fatal(err)
		}
		if r.Fingerprint != sec.Fingerprint() {
			t.Errorf("recipient %s, want %s", r.Fingerprint, sec.Fingerprint())
		}
		c, err := sealed.Copy(r, testOuter(who), chachaRand(byte(10+i)))
		if err != nil {
			t.Fatal(err)
		}
		copies = append(copies, copyOf{who, sec, c})
	}
	for i, cp := range copies {
		msg := sealed.Bytes(cp.c)
		if i > 0 && cp.c.Shared != copies[0].c.Shared {
			t.Errorf("copy %d uses shared part %d, copy 0 part %d (same key type)", i, cp.c.Shared, copies[0].c.Shared)
		}
		if !bytes.HasSuffix(cp.c.Head, []byte("\r\n")) || !bytes.HasPrefix(cp.c.Tail, []byte("=")) {
			t.Errorf("head or tail not on line boundaries: %q … %q", cp.c.Head[len(cp.c.Head)-10:], cp.c.Tail[:10])
		}
		if bytes.Contains(msg, []byte("Conceição")) || bytes.Contains(msg, []byte("serial 42")) {
			t.Fatal("plaintext in the encrypted mail")
		}
		checkCRLF(t, msg)
		asc := extractEncrypted(t, msg)
		for _, line := range strings.Split(string(asc), "\r\n") {
			if len(line) > 64 {
				t.Fatalf("armor line of %d characters", len(line))
			}
		}
		checkArmorCRC(t, asc)
		o, err := pgpmime.Open(bytes.NewReader(msg), cp.key, pgpmime.OpenOptions{Now: testNow})
		if err != nil {
			t.Fatalf("copy %d: %v", i, err)
		}
		if !bytes.Equal(o.Entity, signed.Bytes()) {
			t.Fatalf("copy %d: decrypted entity differs from the signed entity", i)
		}
		// The next recipient's key does not open this copy: it carries
		// only its own recipient's PKESK.
		next := copies[(i+1)%len(copies)].key
		if _, err := pgpmime.Open(bytes.NewReader(msg), next, pgpmime.OpenOptions{Now: testNow}); !errors.Is(err, pgpmime.ErrDecrypt) {
			t.Errorf("copy %d opened by another recipient's key: %v", i, err)
		}
	}
	// A bad outer header is refused for one copy, not for the others.
	bad := testOuter(conceicao)
	bad.Subject = "line\r\nBcc: x@example.org"
	r, err := pgpmime.NewRecipient(copies[0].key.Public(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sealed.Copy(r, bad, nil); !errors.Is(err, pgpmime.ErrHeader) {
		t.Errorf("header injection: %v, want ErrHeader", err)
	}
}

// TestNewRecipientRefuses: a key without a usable encryption key gives no
// recipient.
func TestNewRecipientRefuses(t *testing.T) {
	sec := rcptKey(t, "Expired", "old@example.org")
	// Long after the test keys' creation, before it: never valid.
	if _, err := pgpmime.NewRecipient(sec.Public(), sec.Public().Created.AddDate(0, 0, -1)); !errors.Is(err, keys.ErrNoEncryptionKey) {
		t.Errorf("key used before its creation: %v, want ErrNoEncryptionKey", err)
	}
}

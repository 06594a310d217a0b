package inbound

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"

	"github.com/ccdir/ccdir/keys"
)

func TestHeadersTooLarge(t *testing.T) {
	many := "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" + strings.Repeat("a1: b\r\n", maxPartHeaderLines+1) + "\r\nx\r\n--b--\r\n"
	if !headersTooLarge([]byte(many)) {
		t.Fatal("a part header of too many lines passed")
	}
	big := "Subject: " + strings.Repeat("x", maxPartHeaderBytes) + "\r\n\r\nbody\r\n"
	if !headersTooLarge([]byte(big)) {
		t.Fatal("a header of too many bytes passed")
	}
	ok := "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n" +
		strings.Repeat("a body line, not a header\r\n", 5*maxPartHeaderLines) + "--b--\r\n"
	if headersTooLarge([]byte(ok)) {
		t.Fatal("a long body was taken for a header")
	}
	w := &walker{maxDepth: 20, maxParts: 100}
	if _, err := w.parseEntity([]byte(many), 0); err != errHeaderLarge {
		t.Fatalf("parseEntity: %v, want errHeaderLarge", err)
	}
}

// A message with thousands of one-pass signatures naming a known key makes
// go-crypto hash the plaintext once per signature the keyring knows: the
// ring stops knowing anyone after maxAnswers lookups.
func TestRingAnswersAreBounded(t *testing.T) {
	sec, err := keys.Generate("Dir", "dir@example.org", keys.AlgoEd25519, time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r := &ring{dir: openpgp.EntityList{sec.Entity()}}
	id := sec.Entity().PrimaryKey.KeyId
	found := 0
	for range 1000 {
		if len(r.EntitiesById(id)) > 0 {
			found++
		}
	}
	if found != maxAnswers {
		t.Fatalf("the ring answered %d lookups, want %d", found, maxAnswers)
	}
}

// A subkey copied into a key without a binding signature is someone
// else's key: the index must not attribute it to the key's owner.
func TestKeyIDsIgnoreUnboundSubkeys(t *testing.T) {
	owner, err := keys.Generate("Owner", "owner@example.org", keys.AlgoEd25519, time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	victim, err := keys.Generate("Victim", "victim@example.org", keys.AlgoEd25519, time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// The owner's public key, then the victim's primary key as a subkey
	// packet with no binding signature.
	var buf bytes.Buffer
	if err := owner.Entity().Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	stolen := *victim.Entity().PrimaryKey
	stolen.IsSubkey = true
	if err := stolen.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	pub, err := keys.ParsePublicOne(buf.Bytes())
	if err != nil {
		t.Fatalf("the forged key did not parse (%v); the test needs one that does, as go-crypto v2 keeps unbound subkeys", err)
	}
	armored, err := pub.Armored()
	if err != nil {
		t.Fatal(err)
	}
	ids := keyIDs(string(armored))
	for _, id := range ids.ids {
		if id == victim.Entity().PrimaryKey.KeyId {
			t.Fatal("an unbound subkey (another member's key) was indexed as the owner's")
		}
	}
	if len(ids.ids) == 0 || ids.ids[0] != owner.Entity().PrimaryKey.KeyId {
		t.Fatalf("ids %v: the owner's primary key is missing", ids.ids)
	}
}

func TestBindingNamesTheEnvelopeAddress(t *testing.T) {
	c := Config{Addresses: []string{"ccdir@example.org", "alerts@example.org"}}
	cases := []struct {
		text      string
		protected []string
		to        string
		want      bool
	}{
		{"DIRECTORY ccdir@example.org\nWHOAMI\n", nil, "ccdir@example.org", true},
		{"DIRECTORY ccdir@example.org\nWHOAMI\n", nil, "alerts@example.org", false}, // a command mail re-sent to the list
		{"DIRECTORY alerts@example.org\nTLP:RED\n", nil, "ccdir@example.org", false},
		{"hello\n", []string{"alerts@example.org"}, "alerts@example.org", true},
		{"hello\n", []string{"ccdir@example.org"}, "alerts@example.org", false},
		{"DIRECTORY other@example.net\n", nil, "ccdir@example.org", false},
		{"WHOAMI\n> quoted\nDIRECTORY ccdir@example.org\n", nil, "ccdir@example.org", false}, // after a quoted line: outside the block
		{"WHOAMI\n-- \nDIRECTORY ccdir@example.org\n", nil, "ccdir@example.org", false},
	}
	for _, tc := range cases {
		if got := c.bound(ScanBlock(tc.text), tc.protected, tc.to) != ""; got != tc.want {
			t.Errorf("bound(%q, %v, %s) = %v, want %v", tc.text, tc.protected, tc.to, got, tc.want)
		}
	}
}

package digest_test

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/digest"
	"github.com/ccdir/ccdir/pkg/export"
)

// The key a member imports from the digest's key chain must be the one
// the twice-signed rekey entry hands over to: the same key with an
// encryption subkey added (someone else's, say) is refused though its
// fingerprint is the same; the same key with a user ID added (key
// update-uids after the rekey) is taken (review r4, finding 3).
func TestCheckChainKeyIsTheLinkedKey(t *testing.T) {
	f := newChainFixture(t)
	old := f.j.Secret
	next := newKey(t, "next")
	armored := func() string { return string(mustArmor(t, reparse(t, next))) }
	linked := armored()
	listAs := func(key string) func(*export.Export) {
		return func(e *export.Export) {
			rekeyTo(t, f, next, 7, nil, next, old, next)(e)
			k := &e.Chain.Keys[len(e.Chain.Keys)-1]
			k.Key = key
		}
	}
	// The genuine link, and the key listed with one more user ID.
	data, sig := edit(t, f.next, next, listAs(linked))
	if got, err := digest.Check(data, sig, digest.CheckOptions{Pin: f.pin, Last: &f.head1, Now: jobNow}); err != nil {
		t.Fatalf("genuine: %+v, %v", got, err)
	}
	e := next.Entity()
	cfg := &packet.Config{Time: func() time.Time { return jobNow.Add(-time.Hour) }}
	if err := e.AddUserId("Directory", "", "alerts@ccdir.example", cfg); err != nil {
		t.Fatal(err)
	}
	moreUIDs := armored()
	data, sig = edit(t, f.next, next, listAs(moreUIDs))
	if got, err := digest.Check(data, sig, digest.CheckOptions{Pin: f.pin, Last: &f.head1, Now: jobNow}); err != nil {
		t.Fatalf("listed with a user ID added: %+v, %v", got, err)
	}
	// An encryption subkey added: same fingerprint, another key to
	// encrypt to.
	if err := e.AddEncryptionSubkey(cfg); err != nil {
		t.Fatal(err)
	}
	sub := e.Subkeys[len(e.Subkeys)-1].PublicKey
	wider := armored()
	if p, err := keys.ParsePublicOne([]byte(wider)); err != nil || p.Fingerprint != next.Fingerprint() || len(p.Fingerprints()) != 3 {
		t.Fatalf("the widened key: %v, %v", p, err)
	}
	data, sig = edit(t, f.next, next, listAs(wider))
	got, err := digest.Check(data, sig, digest.CheckOptions{Pin: f.pin, Last: &f.head1, Now: jobNow})
	want := "key chain: key " + next.Fingerprint() + " as listed is not the key entry 7 hands over to, but one with a subkey added"
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(strings.ToUpper(err.Error()), strings.ToUpper(hex.EncodeToString(sub.Fingerprint))) {
		t.Errorf("listed with an encryption subkey added: %+v, %v; want %q naming the subkey", got, err, want)
	}
}

// reparse is s's public key as its entity is now.
func reparse(t *testing.T, s *keys.Secret) *keys.Public {
	t.Helper()
	var b bytes.Buffer
	if err := s.Entity().Serialize(&b); err != nil {
		t.Fatal(err)
	}
	p, err := keys.ParsePublicOne(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

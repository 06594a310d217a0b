package mailcmd

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// padSig is sig with n bytes of junk in an unhashed subpacket: what
// anyone on the way can add to a signature without breaking it.
func padSig(t *testing.T, sig *packet.Signature, n int, v byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := sig.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	raw := b.Bytes()
	var body []byte
	switch l := raw[1]; {
	case l < 192:
		body = raw[2:]
	case l < 224:
		body = raw[3:]
	default:
		body = raw[6:]
	}
	uo := 6 + (int(body[4])<<8 | int(body[5]))
	ul := int(body[uo])<<8 | int(body[uo+1])
	un := append([]byte{}, body[uo+2:uo+2+ul]...)
	un = append(un, 255, byte((n+1)>>24), byte((n+1)>>16), byte((n+1)>>8), byte(n+1), 101)
	un = append(un, bytes.Repeat([]byte{v}, n)...)
	nb := append([]byte{}, body[:uo]...)
	nb = append(nb, byte(len(un)>>8), byte(len(un)))
	nb = append(append(nb, un...), body[uo+2+ul:]...)
	return append([]byte{0xc2, 255, byte(len(nb) >> 24), byte(len(nb) >> 16), byte(len(nb) >> 8), byte(len(nb))}, nb...)
}

func armored(t *testing.T, bin []byte) pgpmime.Part {
	t.Helper()
	var a bytes.Buffer
	w, err := armor.Encode(&a, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bin)
	w.Close()
	return pgpmime.Part{ContentType: "application/pgp-keys", Filename: "key.asc", Body: a.Bytes()}
}

func addFay(t *testing.T, f *fixture, e *openpgp.Entity) {
	t.Helper()
	if _, err := f.store.Update(f.ctx, directory.Operator, func(tx *directory.Tx) error {
		_, err := tx.AddContact(directory.Contact{Email: "fay@dns.pt", Name: "Fay Lopes", Phones: []directory.Phone{{Number: "+351213141519"}},
			Roles: []directory.Role{{TLD: "pt", Role: "security"}}, Key: dirKey(t, entityPublic(t, e))})
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// KEY-REFRESH mails cannot bloat the ledger: each fits max_evidence, but
// the key each entry stores keeps no junk added to its signatures, and
// only the latest self-signature, so a key refreshed again and again
// stays the size it was.
func TestKeyRefreshDoesNotGrowTheKey(t *testing.T) {
	f := newFixture(t)
	year := 365 * 24 * time.Hour
	e, err := openpgp.NewEntity("Fay Lopes", "", "fay@dns.pt", expiringConfig(fixedNow.Add(-300*24*time.Hour), year))
	if err != nil {
		t.Fatal(err)
	}
	addFay(t, f, e)
	first := 0
	for i := 0; i < 8; i++ {
		at := fixedNow.Add(time.Duration(i-20) * time.Minute)
		cfg := expiringConfig(at, 2*year)
		secs := uint32(2 * year / time.Second)
		var bin bytes.Buffer
		e.PrimaryKey.Serialize(&bin)
		for _, id := range e.Identities {
			sig := &packet.Signature{Version: 4, SigType: packet.SigTypePositiveCert, PubKeyAlgo: e.PrimaryKey.PubKeyAlgo, Hash: cfg.Hash(),
				CreationTime: at, KeyLifetimeSecs: &secs, IssuerKeyId: &e.PrimaryKey.KeyId, FlagsValid: true, FlagSign: true, FlagCertify: true}
			if err := sig.SignUserId(id.UserId.Id, e.PrimaryKey, e.PrivateKey, cfg); err != nil {
				t.Fatal(err)
			}
			id.UserId.Serialize(&bin)
			sig.Serialize(&bin)
			if i < 4 { // three 60 KB copies of the new signature (no secret needed for those)
				for j := 0; j < 3; j++ {
					bin.Write(padSig(t, sig, 60000, byte('a'+10*i+j)))
				}
			}
		}
		for _, sk := range e.Subkeys {
			sk.PublicKey.Serialize(&bin)
			sk.Bindings[0].Packet.Serialize(&bin)
		}
		part := armored(t, bin.Bytes())
		if len(part.Body) > DefaultMaxEvidence {
			t.Fatalf("mail %d: attachment of %d bytes", i, len(part.Body))
		}
		res := f.handle(f.accepted("fay@dns.pt", "KEY-REFRESH\n", part))
		if res.Failed || len(res.Entries) != 1 || res.Entries[0].Op != "key.refresh" {
			t.Fatalf("mail %d: %+v %v", i, res, res.Results[0].Err)
		}
		var payload int
		if err := f.store.DB().QueryRowContext(f.ctx, `SELECT length(payload) FROM ledger ORDER BY seq DESC LIMIT 1`).Scan(&payload); err != nil {
			t.Fatal(err)
		}
		if first == 0 {
			first = payload
		}
		if payload > 4<<10 || payload > first+64 {
			t.Fatalf("mail %d: an entry of %d bytes (the first was %d)", i, payload, first)
		}
	}
}

// A refresh that would make the key larger than a contact's key can be
// (directory.MaxKeyBytes) is refused, and nothing is written.
func TestKeyRefreshTooLarge(t *testing.T) {
	f := newFixture(t)
	year := 365 * 24 * time.Hour
	e, err := openpgp.NewEntity("Fay Lopes", "", "fay@dns.pt", expiringConfig(fixedNow.Add(-300*24*time.Hour), year))
	if err != nil {
		t.Fatal(err)
	}
	addFay(t, f, e)
	at := fixedNow.Add(-time.Hour)
	cfg := expiringConfig(at, year)
	var bin bytes.Buffer
	if err := e.Serialize(&bin); err != nil {
		t.Fatal(err)
	}
	// The owner's own user IDs, each certified: over 64 KiB armored.
	for i := 0; bin.Len() < 60<<10; i++ {
		uid := packet.NewUserId(fmt.Sprintf("Fay Lopes %d %s", i, strings.Repeat("x", 100)), "", fmt.Sprintf("fay%d@dns.pt", i))
		sig := &packet.Signature{Version: 4, SigType: packet.SigTypePositiveCert, PubKeyAlgo: e.PrimaryKey.PubKeyAlgo, Hash: cfg.Hash(),
			CreationTime: at, IssuerKeyId: &e.PrimaryKey.KeyId}
		if err := sig.SignUserId(uid.Id, e.PrimaryKey, e.PrivateKey, cfg); err != nil {
			t.Fatal(err)
		}
		uid.Serialize(&bin)
		sig.Serialize(&bin)
	}
	before := f.serial()
	res := f.handle(f.accepted("fay@dns.pt", "KEY-REFRESH\n", armored(t, bin.Bytes())))
	if !res.Failed || len(res.Entries) != 0 || !strings.Contains(fmt.Sprint(res.Results[0].Err), "at most "+fmt.Sprint(directory.MaxKeyBytes>>10)+" KiB") {
		t.Fatalf("%+v %v", res, res.Results[0].Err)
	}
	if f.serial() != before {
		t.Fatal("a refused refresh wrote an entry")
	}
	t.Logf("answer: %v", res.Results[0].Err)
}

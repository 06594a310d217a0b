package inbound

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"

	"github.com/ccdir/ccdir/directory"
)

// sigPacket is m's binary detached signature over data.
func sigPacket(t testing.TB, m *member, data []byte, at time.Time, label string, text bool) []byte {
	t.Helper()
	var b bytes.Buffer
	params := &openpgp.SignParams{TextSig: text, Config: signCfg(label, at)}
	if err := openpgp.DetachSignWithParams(&b, []*openpgp.Entity{m.entity}, bytes.NewReader(data), params); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// armorSigs armors signature packets as one block, in order.
func armorSigs(t testing.TB, sigs ...[]byte) string {
	t.Helper()
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.SignatureType, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sigs {
		w.Write(s)
	}
	w.Close()
	return crlf(b.String()) + "\r\n"
}

// multiClearsigned is text clear-signed with the given signature packets
// (made over the block's signed bytes, or not).
func multiClearsigned(t testing.TB, text string, sigs ...[]byte) string {
	t.Helper()
	return "-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA256\r\n\r\n" + crlf(text) + "\r\n" + armorSigs(t, sigs...)
}

type sigWant struct {
	contact  string // registered contact whose key made it, "" if none
	attached bool
	verified bool
}

func checkSigs(t *testing.T, acc *Accepted, want []sigWant) {
	t.Helper()
	if len(acc.Signatures) != len(want) {
		t.Fatalf("%d signatures, want %d: %+v", len(acc.Signatures), len(want), acc.Signatures)
	}
	for i, w := range want {
		s := acc.Signatures[i]
		if s.Contact != w.contact || s.Attached != w.attached || s.Verified() != w.verified {
			t.Errorf("signature %d: contact %q attached %v verified %v (err %v), want %+v", i, s.Contact, s.Attached, s.Verified(), s.Err, w)
		}
		if s.Verified() && s.Fingerprint == "" {
			t.Errorf("signature %d verified without a fingerprint", i)
		}
	}
}

func checkSigsAnyOrder(t *testing.T, acc *Accepted, want []sigWant) {
	t.Helper()
	if len(acc.Signatures) != len(want) {
		t.Fatalf("%d signatures, want %d: %+v", len(acc.Signatures), len(want), acc.Signatures)
	}
	left := slices.Clone(want)
	for i, s := range acc.Signatures {
		got := sigWant{s.Contact, s.Attached, s.Verified()}
		j := slices.Index(left, got)
		if j < 0 {
			t.Errorf("signature %d: %+v (err %v) not among %+v", i, got, s.Err, left)
			continue
		}
		left = slices.Delete(left, j, j+1)
	}
}

const rotateText = "DIRECTORY " + dirAddr + "\nKEY-ROTATE\n"

// Every signature of a clear-signed block is checked on its own: the
// signer is the first registered key whose signature verifies, and
// Accepted lists which did and which did not.
func TestMultiSignatureClearsigned(t *testing.T) {
	w := newWorld(t)
	at := corpusNow.Add(-time.Minute)
	text := "DIRECTORY " + dirAddr + "\nWHOAMI\n"
	// The signed bytes: those of a block whose signature anyone made.
	ref := clearsigned(t, w.ana, text, at, "ref")
	b, _ := clearsign.Decode([]byte(ref))
	signed := b.Bytes
	ana := sigPacket(t, w.ana, signed, at, "ana", true)
	bruno := sigPacket(t, w.bruno, signed, at, "bruno", true)
	brunoBad := sigPacket(t, w.bruno, []byte("another text"), at, "bruno-bad", true)
	mallory := sigPacket(t, w.mallory, signed, at, "mallory", true)
	for _, tc := range []struct {
		name   string
		sigs   [][]byte
		signer string // "" : refused
		want   []sigWant
	}{
		{"one", [][]byte{ana}, "ana@dns.pt", []sigWant{{"ana@dns.pt", false, true}}},
		{"two good", [][]byte{bruno, ana}, "bruno@dns.pt", []sigWant{{"bruno@dns.pt", false, true}, {"ana@dns.pt", false, true}}},
		{"bad then good", [][]byte{brunoBad, ana}, "ana@dns.pt", []sigWant{{"bruno@dns.pt", false, false}, {"ana@dns.pt", false, true}}},
		{"good then bad", [][]byte{ana, brunoBad}, "ana@dns.pt", []sigWant{{"ana@dns.pt", false, true}, {"bruno@dns.pt", false, false}}},
		{"unregistered good", [][]byte{mallory, ana}, "ana@dns.pt", []sigWant{{"", false, false}, {"ana@dns.pt", false, true}}},
		{"bad and unregistered", [][]byte{brunoBad, mallory}, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mail := textMail(headers("ana@dns.pt", "multi-"+strings.ReplaceAll(tc.name, " ", "-")), multiClearsigned(t, text, tc.sigs...))
			acc, err := w.p.Process(context.Background(), Envelope{From: "ana@dns.pt", To: []string{dirAddr}}, bytes.NewReader(mail))
			if tc.signer == "" {
				if _, ok := err.(*Refusal); !ok {
					t.Fatalf("Process: %v, %v; want a refusal", acc, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
			if acc.Contact.Email != tc.signer {
				t.Errorf("signer %s, want %s", acc.Contact.Email, tc.signer)
			}
			checkSigs(t, acc, tc.want)
			if err := VerifyEvidence(acc.Evidence, acc.Contact.Key.Armored, acc.SignedAt); err != nil {
				t.Errorf("evidence: %v", err)
			}
			if id, err := EvidenceSeen(acc.Evidence, acc.Key.Fingerprint); err != nil || id != acc.Seen {
				t.Errorf("evidence replay id %s, %v; want %s", id, err, acc.Seen)
			}
		})
	}
}

// A PGP/MIME signature block of several signatures, with a key attached
// to the signed content: the attached key's signature is checked too,
// on its own, and SignedBy says whether it verified.
func TestMultiSignaturePGPMIME(t *testing.T) {
	w := newWorld(t)
	at := corpusNow.Add(-time.Minute)
	newKey := newMember(t, "Ana Sousa", "ana@dns.pt", corpusNow.Add(-24*time.Hour), 0)
	newPub, err := newKey.pub(t).Armored()
	if err != nil {
		t.Fatal(err)
	}
	entity := mixedEntity(rotateText, "new.asc", string(newPub))
	ana := sigPacket(t, w.ana, entity, at, "ana", false)
	anaNew := sigPacket(t, newKey, entity, at, "ana-new", false)
	anaNewBad := sigPacket(t, newKey, []byte("other"), at, "ana-new-bad", false)
	mallory := sigPacket(t, w.mallory, entity, at, "mallory", false)
	brunoBad := sigPacket(t, w.bruno, []byte("other"), at, "bruno-bad", false)
	newFpr := newKey.pub(t).Fingerprint
	for _, tc := range []struct {
		name      string
		sigs      [][]byte
		signer    string
		want      []sigWant
		provesNew bool
	}{
		{"old only", [][]byte{ana}, "ana@dns.pt", []sigWant{{"ana@dns.pt", false, true}}, false},
		{"old and new", [][]byte{ana, anaNew}, "ana@dns.pt", []sigWant{{"ana@dns.pt", false, true}, {"", true, true}}, true},
		{"new and old", [][]byte{anaNew, ana}, "ana@dns.pt", []sigWant{{"", true, true}, {"ana@dns.pt", false, true}}, true},
		{"old and bad new", [][]byte{ana, anaNewBad}, "ana@dns.pt", []sigWant{{"ana@dns.pt", false, true}, {"", true, false}}, false},
		{"bad, unregistered, good", [][]byte{brunoBad, mallory, ana}, "ana@dns.pt", []sigWant{{"bruno@dns.pt", false, false}, {"", false, false}, {"ana@dns.pt", false, true}}, false},
		{"new alone", [][]byte{anaNew}, "", nil, false},
		{"bad and new", [][]byte{brunoBad, anaNew}, "", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mail := signedMail(headers("ana@dns.pt", "pgpmime-"+strings.ReplaceAll(tc.name, " ", "-")), entity, armorSigs(t, tc.sigs...))
			acc, err := w.p.Process(context.Background(), Envelope{From: "ana@dns.pt", To: []string{dirAddr}}, bytes.NewReader(mail))
			if tc.signer == "" {
				if _, ok := err.(*Refusal); !ok {
					t.Fatalf("Process: %v, %v; want a refusal", acc, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
			if acc.Contact.Email != tc.signer {
				t.Errorf("signer %s, want %s", acc.Contact.Email, tc.signer)
			}
			checkSigs(t, acc, tc.want)
			if got := acc.SignedBy(newFpr); got != tc.provesNew {
				t.Errorf("SignedBy(new key) = %v, want %v", got, tc.provesNew)
			}
			if !acc.SignedBy(acc.Key.Fingerprint) {
				t.Errorf("SignedBy(the signer's key) is false")
			}
			if err := VerifyEvidence(acc.Evidence, acc.Contact.Key.Armored, acc.SignedAt); err != nil {
				t.Errorf("evidence: %v", err)
			}
			if id, err := EvidenceSeen(acc.Evidence, acc.Key.Fingerprint); err != nil || id != acc.Seen {
				t.Errorf("evidence replay id %s, %v; want %s", id, err, acc.Seen)
			}
		})
	}
}

// An encrypted message signed by several keys (one-pass signatures):
// each is checked on its own, the attached key's too.
func TestMultiSignatureEncrypted(t *testing.T) {
	w := newWorld(t)
	at := corpusNow.Add(-time.Minute)
	newKey := newMember(t, "Ana Sousa", "ana@dns.pt", corpusNow.Add(-24*time.Hour), 0)
	newPub, err := newKey.pub(t).Armored()
	if err != nil {
		t.Fatal(err)
	}
	entity := mixedEntity(rotateText, "new.asc", string(newPub))
	for _, tc := range []struct {
		name      string
		signers   []*member
		signer    string
		want      []sigWant
		provesNew bool
	}{
		{"old only", []*member{w.ana}, "ana@dns.pt", []sigWant{{"ana@dns.pt", false, true}}, false},
		{"old and new", []*member{w.ana, newKey}, "ana@dns.pt", []sigWant{{"ana@dns.pt", false, true}, {"", true, true}}, true},
		{"unregistered and old", []*member{w.mallory, w.ana}, "ana@dns.pt", []sigWant{{"", false, false}, {"ana@dns.pt", false, true}}, false},
		{"new alone", []*member{newKey}, "", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			aw, _ := armor.Encode(&b, "PGP MESSAGE", nil)
			params := &openpgp.EncryptParams{Config: signCfg("enc "+tc.name, at), EncryptionTime: &at}
			for _, m := range tc.signers {
				params.Signers = append(params.Signers, m.entity)
			}
			pt, err := openpgp.EncryptWithParams(aw, []*openpgp.Entity{w.dir.Public().Entity()}, nil, params)
			if err != nil {
				t.Fatal(err)
			}
			pt.Write(entity)
			pt.Close()
			aw.Close()
			mail := encryptedMail(headers("ana@dns.pt", "enc-"+strings.ReplaceAll(tc.name, " ", "-")), crlf(b.String()))
			acc, err := w.p.Process(context.Background(), Envelope{From: "ana@dns.pt", To: []string{dirAddr}}, bytes.NewReader(mail))
			if tc.signer == "" {
				if _, ok := err.(*Refusal); !ok {
					t.Fatalf("Process: %v, %v; want a refusal", acc, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
			if acc.Contact.Email != tc.signer {
				t.Errorf("signer %s, want %s", acc.Contact.Email, tc.signer)
			}
			// The order of one-pass signatures is go-crypto's.
			checkSigsAnyOrder(t, acc, tc.want)
			if got := acc.SignedBy(newKey.pub(t).Fingerprint); got != tc.provesNew {
				t.Errorf("SignedBy(new key) = %v, want %v", got, tc.provesNew)
			}
			if id, err := EvidenceSeen(acc.Evidence, acc.Key.Fingerprint); err != nil || id != acc.Seen {
				t.Errorf("evidence replay id %s, %v; want %s", id, err, acc.Seen)
			}
			if err := VerifyEvidence(acc.Evidence, acc.Contact.Key.Armored, acc.SignedAt); err != nil {
				t.Errorf("evidence: %v", err)
			}
		})
	}
}

// A mail signed by two registered keys is used once: anyone may reorder
// the signatures of the unsigned block, which would make the other key
// the signer, and the statement would run again as the other contact's.
// Every signature that verified is marked seen.
func TestMultiSignatureReplay(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	at := corpusNow.Add(-time.Minute)
	text := "DIRECTORY " + dirAddr + "\nWHOAMI\n"
	b, _ := clearsign.Decode([]byte(clearsigned(t, w.ana, text, at, "ref")))
	ana := sigPacket(t, w.ana, b.Bytes, at, "ana", true)
	bruno := sigPacket(t, w.bruno, b.Bytes, at, "bruno", true)
	env := Envelope{From: "ana@dns.pt", To: []string{dirAddr}}
	first := textMail(headers("ana@dns.pt", "both"), multiClearsigned(t, text, ana, bruno))
	acc, err := w.p.Process(ctx, env, bytes.NewReader(first))
	if err != nil {
		t.Fatal(err)
	}
	if acc.Contact.Email != "ana@dns.pt" {
		t.Fatalf("signer %s", acc.Contact.Email)
	}
	// Used as a change is: the seen marks and an entry keeping the
	// evidence, in one transaction.
	use := func(acc *Accepted) error {
		_, err := w.store.Update(ctx, directory.Actor{Name: "member:" + acc.Key.Fingerprint, Evidence: acc.Evidence}, func(tx *directory.Tx) error {
			if err := acc.MarkSeen(ctx, tx.SQL()); err != nil {
				return err
			}
			_, err := tx.UpdateContact(acc.Contact.Email, func(c *directory.Contact) error { c.Name += " X"; return nil })
			return err
		})
		return err
	}
	if err := use(acc); err != nil {
		t.Fatal(err)
	}
	for name, sigs := range map[string][][]byte{"reordered": {bruno, ana}, "bruno alone": {bruno}} {
		again := textMail(headers("ana@dns.pt", "again"), multiClearsigned(t, text, sigs...))
		acc2, err := w.p.Process(ctx, env, bytes.NewReader(again))
		if r, ok := err.(*Refusal); !ok || !strings.Contains(r.Reason, "already used") {
			t.Errorf("%s: Process accepted %v, %v; want refused as already used", name, acc2 != nil, err)
		}
	}
	// With seen_signatures emptied, the ledger still knows both, the
	// one that was not the signer too (Bruno's signature alone).
	if _, err := w.store.DB().ExecContext(ctx, `DELETE FROM seen_signatures`); err != nil {
		t.Fatal(err)
	}
	again := textMail(headers("ana@dns.pt", "again"), multiClearsigned(t, text, bruno))
	acc2, err := w.p.Process(ctx, env, bytes.NewReader(again))
	if err != nil {
		t.Fatal(err)
	}
	if acc2.Contact.Email != "bruno@dns.pt" {
		t.Fatalf("reordered: signer %s", acc2.Contact.Email)
	}
	if err := use(acc2); !errors.Is(err, ErrReplay) {
		t.Fatalf("reordered replay of a mail kept in the ledger: %v, want ErrReplay", err)
	}
}

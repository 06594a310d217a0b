package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
)

// TestReleasedHomeMemberEntries: on a home made by the released ccdir,
// many changes by signed mail (clear-signed and PGP/MIME signed, one of
// them rotating the member's key between two changes) all pass the
// ledger checks of process and verify: the actor of every member-made
// entry was registered before its mail, and its evidence verifies with
// that key. The old key is not registered after the rotation.
func TestReleasedHomeMemberEntries(t *testing.T) {
	dump, err := os.ReadFile(filepath.Join("testdata", "released", "directory.sql"))
	if err != nil {
		t.Fatal(err)
	}
	home := releasedHome(t, string(dump))
	ccdir := func(stdin []byte, args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"--home", home}, args...), bytes.NewReader(stdin), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	must := func(stdin []byte, args ...string) string {
		t.Helper()
		code, out, stderr := ccdir(stdin, args...)
		if code != 0 {
			t.Fatalf("ccdir %s: exit %d, %s%s", strings.Join(args, " "), code, out, stderr)
		}
		return out + stderr
	}
	t.Setenv("CCDIR_COMMANDS_CHANGES_PER_DAY", "1000")
	must(nil, "outbox", "list") // migrates
	now := time.Now().Add(-time.Hour)
	old, err := keys.Generate("Bruno", "bruno@nic.br", keys.AlgoEd25519, now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	next, err := keys.Generate("Bruno New", "bruno@nic.br", keys.AlgoEd25519, now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	armored := func(s *keys.Secret) []byte {
		b, err := s.Public().Armored()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	keyFile := filepath.Join(t.TempDir(), "bruno.asc")
	if err := os.WriteFile(keyFile, armored(old), 0o600); err != nil {
		t.Fatal(err)
	}
	must(nil, "contact", "update", "bruno@nic.br", "--key", keyFile)

	n := 0
	header := func(ct string) string {
		n++
		return fmt.Sprintf("From: <bruno@nic.br>\r\nTo: <ccdir@tldops.example>\r\nSubject: commands\r\nDate: %s\r\nMessage-ID: <m%d@nic.br>\r\nMIME-Version: 1.0\r\nContent-Type: %s\r\n\r\n",
			time.Now().Format(time.RFC1123Z), n, ct)
	}
	clearMail := func(s *keys.Secret, text string) []byte {
		var b bytes.Buffer
		w, err := clearsign.Encode(&b, s.Entity().PrivateKey, s.SignConfig())
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(text))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return []byte(header("text/plain; charset=utf-8") + strings.ReplaceAll(b.String(), "\n", "\r\n"))
	}
	// mimeMail is signed by every one of signers, one signature each in
	// one block (a KEY-ROTATE proves the new key by its signature).
	mimeMail := func(signers []*keys.Secret, text string, key []byte) []byte {
		entity := "Content-Type: multipart/mixed; boundary=\"mix-b\"\r\n\r\n--mix-b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
			strings.ReplaceAll(text, "\n", "\r\n") + "\r\n--mix-b\r\nContent-Type: application/pgp-keys\r\nContent-Disposition: attachment; filename=\"new.asc\"\r\n\r\n" +
			strings.ReplaceAll(string(key), "\n", "\r\n") + "\r\n--mix-b--\r\n"
		var sig bytes.Buffer
		aw, err := armor.Encode(&sig, "PGP SIGNATURE", nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range signers {
			b, err := s.Sign([]byte(entity))
			if err != nil {
				t.Fatal(err)
			}
			aw.Write(b)
		}
		aw.Close()
		micalg, err := micalgOf(sig.String())
		if err != nil {
			t.Fatal(err)
		}
		return []byte(header(`multipart/signed; micalg=`+micalg+`; protocol="application/pgp-signature"; boundary="sig-b"`) +
			"--sig-b\r\n" + entity + "\r\n--sig-b\r\nContent-Type: application/pgp-signature\r\n\r\n" +
			strings.ReplaceAll(sig.String(), "\n", "\r\n") + "\r\n--sig-b--\r\n")
	}
	process := func(mail []byte, want string) {
		t.Helper()
		out := must(mail, "process", "--from", "bruno@nic.br", "--to", "ccdir@tldops.example")
		if !strings.Contains(out, want) {
			t.Fatalf("process: %s, want %q", out, want)
		}
	}
	for i := range 12 {
		process(clearMail(old, fmt.Sprintf("DIRECTORY ccdir@tldops.example\nSET NAME Bruno %d\n", i)), "1 commands, 1 ledger entries")
	}
	process(mimeMail([]*keys.Secret{old, next}, "DIRECTORY ccdir@tldops.example\nSET NAME Bruno R\nKEY-ROTATE\nSET 24X7 yes\n", armored(next)), "3 commands, 3 ledger entries")
	process(clearMail(old, "DIRECTORY ccdir@tldops.example\nSET NAME Bruno Old\n"), "refused mail")
	for i := range 3 {
		process(clearMail(next, fmt.Sprintf("DIRECTORY ccdir@tldops.example\nSET NAME Bruno N%d\n", i)), "1 commands, 1 ledger entries")
	}
	if out := must(nil, "verify"); !strings.Contains(out, "ok serial 24 ") {
		t.Fatalf("verify: %s", out)
	}

	// An entry signed by the directory key in bruno's name whose evidence
	// is not his signed mail (what a ccdir that laundered a change would
	// have written): verify names it.
	sec, err := keys.ReadSecretFile(filepath.Join(home, keysDir, secretName), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := directory.Open(context.Background(), filepath.Join(home, dbName), directory.Options{Signer: sec, Migrations: migrations()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Update(context.Background(), directory.Actor{Name: "member:" + next.Fingerprint(), Evidence: clearMail(old, "DIRECTORY ccdir@tldops.example\nSET NAME Eve\n")},
		func(tx *directory.Tx) error {
			_, err := tx.UpdateContact("bruno@nic.br", func(c *directory.Contact) error { c.Name = "Eve"; return nil })
			return err
		})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr := ccdir(nil, "verify")
	// Its evidence is a whole mail, which no ccdir since evidence v1
	// keeps, after the v1 evidence of entry 7: refused for that first
	// (verify_evidence_launder.txtar checks the signature of whole mails
	// in a home older than evidence v1).
	if want := "ledger entry 25: its evidence is a whole mail, as only a ccdir older than evidence v1 kept it, but entry 7 already kept evidence v1"; code != exitVerify || !strings.Contains(stderr, want) {
		t.Fatalf("verify of a laundered entry: exit %d, %s, want %q", code, stderr, want)
	}
}

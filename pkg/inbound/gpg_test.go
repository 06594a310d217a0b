package inbound

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
)

// TestGPGForms sends requests made by GnuPG in every accepted form, at the
// real time, and requires each to be accepted and attributed to the
// signer.
func TestGPGForms(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	g := keystest.GPG(t)
	fpr := g.GenKey("Gina Weber <gina@nic.de>", "future-default", "default", "1y")
	register := func() {
		t.Helper()
		pub, err := keys.ParsePublicOne(g.ExportPublic(fpr))
		if err != nil {
			t.Fatal(err)
		}
		_, err = w.store.Update(ctx, directory.Operator, func(tx *directory.Tx) error {
			if _, err := tx.Contact("gina@nic.de"); err != nil {
				_, err = tx.AddContact(directory.Contact{Email: "gina@nic.de", Name: "Gina Weber",
					Phones: []directory.Phone{{Number: "+4969123456780"}},
					Roles:  []directory.Role{{TLD: "de", Role: directory.RoleSecurity}},
					Key:    registeredKey(t, pub)})
				return err
			}
			_, err := tx.SetKey("gina@nic.de", registeredKey(t, pub))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	register()
	dirPub, err := w.dir.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	g.Import(dirPub)
	p := &Pipeline{Store: w.store, Secret: w.dir, Config: Config{Addresses: []string{dirAddr}}, Now: time.Now}

	// Each case signs different content: Ed25519 signatures are
	// deterministic, and the same content signed by the same key in the
	// same second is the same signed statement (a replay).
	textOf := func(id string) string { return "DIRECTORY " + dirAddr + "\nSHOW de\n\n" + id + "\n" }
	gpg := func(in []byte, args ...string) string {
		t.Helper()
		out, stderr, err := g.RunInput(in, append([]string{"--trust-model", "always", "--local-user", fpr}, args...)...)
		if err != nil {
			t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		return crlf(string(out))
	}
	hdr := func(id string) string { return headers("gina@nic.de", "gpg-"+id) }
	innerOf := func(id string) []byte { return textEntity(textOf(id), "Subject: protected") }

	cases := []struct {
		name, form string
		msg        func() []byte
	}{
		{"clearsign", FormInlineClear, func() []byte {
			return textMail(hdr("clearsign"), gpg([]byte(textOf("clearsign")), "--clearsign"))
		}},
		{"detach-sign", FormPGPMIMESigned, func() []byte {
			inner := innerOf("detach")
			return signedMail(hdr("detach"), inner, gpg(inner, "--detach-sign", "--armor"))
		}},
		{"textmode-detach-sign", FormPGPMIMESigned, func() []byte {
			inner := innerOf("textmode")
			return signedMail(hdr("textmode"), inner, gpg(inner, "--detach-sign", "--armor", "--textmode"))
		}},
		{"sign-encrypt-inline", FormInlineEncrypted, func() []byte {
			return textMail(hdr("inline-enc"), gpg([]byte(textOf("inline-enc")), "--sign", "--encrypt", "--armor", "-r", w.dir.Fingerprint()))
		}},
		{"sign-encrypt-pgpmime", FormPGPMIMEEncrypted, func() []byte {
			return encryptedMail(hdr("pgpmime-enc"), gpg(innerOf("pgpmime-enc"), "--sign", "--encrypt", "--armor", "-r", w.dir.Fingerprint()))
		}},
		{"sign-encrypt-exchange-mangled", FormPGPMIMEEncrypted, func() []byte {
			return mangledMail(hdr("mangled"), gpg(innerOf("mangled"), "--sign", "--encrypt", "--armor", "-r", w.dir.Fingerprint()))
		}},
		{"detach-sign-then-encrypt", FormPGPMIMEEncrypted, func() []byte {
			inner := innerOf("nested")
			signed := signedMail("", inner, gpg(inner, "--detach-sign", "--armor"))
			return encryptedMail(hdr("nested"), gpg(signed, "--encrypt", "--armor", "-r", w.dir.Fingerprint()))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg := c.msg()
			acc, err := p.Process(ctx, Envelope{From: "gina@nic.de", To: []string{dirAddr}}, bytes.NewReader(msg))
			if err != nil {
				if r, ok := err.(*Refusal); ok {
					t.Fatalf("%v (detail: %s)\n%s", r, r.Detail, msg)
				}
				t.Fatal(err)
			}
			if acc.Form != c.form || acc.Contact.Email != "gina@nic.de" || acc.Key.Fingerprint != fpr {
				t.Errorf("form %s contact %s key %s", acc.Form, acc.Contact.Email, acc.Key.Fingerprint)
			}
			if !strings.HasPrefix(acc.Text, "DIRECTORY "+dirAddr+"\nSHOW de") {
				t.Errorf("Text = %q", acc.Text)
			}
			if acc.Encrypted != strings.Contains(c.name, "encrypt") {
				t.Errorf("Encrypted = %v", acc.Encrypted)
			}
			// What a ledger entry would keep re-verifies with gina's key.
			if err := VerifyEvidence(acc.Evidence, acc.Contact.Key.Armored, acc.SignedAt); err != nil {
				t.Errorf("evidence: %v", err)
			}
			markSeen(t, w, acc)
			if _, err := p.Process(ctx, Envelope{From: "gina@nic.de"}, bytes.NewReader(msg)); err == nil ||
				!strings.Contains(err.Error(), "already used") {
				t.Errorf("replay: %v", err)
			}
		})
	}

	// A clear-signed mail made by GnuPG (UTF-8, as OpenPGP text is) whose
	// Content-Type charset is changed after signing (issue 10, #12): the
	// signed bytes decide the text; a charset that would read them as
	// another text is refused, not turned into "JoÃ£o".
	t.Run("clearsign-charset-relabelled", func(t *testing.T) {
		text := "DIRECTORY " + dirAddr + "\nSET NAME Gina João\n"
		cs := gpg([]byte(text), "--clearsign")
		mail := func(id, charset string) []byte {
			return []byte(hdr(id) + "Content-Type: text/plain; charset=" + charset + "\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + cs)
		}
		for _, charset := range []string{"iso-8859-1", "windows-1252", "koi8-r"} {
			_, err := p.Process(ctx, Envelope{From: "gina@nic.de"}, bytes.NewReader(mail("relabel-"+charset, charset)))
			var ref *Refusal
			if !errors.As(err, &ref) || !strings.Contains(ref.Reason, "charset") {
				t.Errorf("charset %s: %v, want refused for the charset", charset, err)
			}
		}
		acc, err := p.Process(ctx, Envelope{From: "gina@nic.de"}, bytes.NewReader(mail("relabel-utf8", "utf-8")))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(acc.Text, "\nSET NAME Gina João") {
			t.Errorf("Text = %q", acc.Text)
		}
	})

	// A signing subkey signs: the contact is found by the subkey's issuer.
	t.Run("signing-subkey", func(t *testing.T) {
		sub := g.AddKey(fpr, "ed25519", "sign", "1y")
		register()
		out, stderr, err := g.RunInput([]byte(textOf("subkey")), "--local-user", sub+"!", "--clearsign")
		if err != nil {
			t.Fatalf("gpg: %v\n%s", err, stderr)
		}
		acc, err := p.Process(ctx, Envelope{From: "gina@nic.de"}, bytes.NewReader(textMail(hdr("subkey"), string(out))))
		if err != nil {
			t.Fatal(err)
		}
		if acc.Contact.Email != "gina@nic.de" || acc.Key.Fingerprint != fpr {
			t.Errorf("contact %s key %s", acc.Contact.Email, acc.Key.Fingerprint)
		}
	})
}

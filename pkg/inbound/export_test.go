package inbound

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
)

// interop checks an exported evidence with the real gpg and sq: both
// verify it as it is with the signer's public key, and refuse it with a
// byte of the signed data changed.
type interop struct {
	t   *testing.T
	gpg *keystest.GPGHome
	dir string
}

func newInterop(t *testing.T) *interop {
	if _, err := exec.LookPath("sq"); err != nil {
		t.Fatalf("sq (Sequoia) not found on PATH: %v", err)
	}
	return &interop{t: t, gpg: keystest.GPG(t), dir: t.TempDir()}
}

// verify requires gpg and sq to accept msg as signed by fpr (armored
// key: certFile), or, if bad, both to refuse it.
func (o *interop) verify(name string, msg []byte, fpr, certFile string, bad bool) {
	o.t.Helper()
	file := filepath.Join(o.dir, name)
	if err := os.WriteFile(file, msg, 0o600); err != nil {
		o.t.Fatal(err)
	}
	out, stderr, err := o.gpg.Run("--status-fd", "1", "--verify", file)
	valid := regexp.MustCompile(`(?m)^\[GNUPG:\] VALIDSIG ` + fpr + ` `).Match(out)
	switch {
	case bad && (err == nil || valid):
		o.t.Errorf("gpg --verify %s: accepted a changed message\n%s", name, out)
	case !bad && (err != nil || !valid):
		o.t.Errorf("gpg --verify %s: %v\n%s%s", name, err, out, stderr)
	}
	sqOut, err := exec.Command("sq", "verify", "--signer-cert", certFile, file).CombinedOutput()
	switch {
	case bad && err == nil:
		o.t.Errorf("sq verify %s: accepted a changed message\n%s", name, sqOut)
	case !bad && err != nil:
		o.t.Errorf("sq verify %s: %v\n%s", name, err, sqOut)
	}
}

// register imports a signer's public key into gpg and writes it for sq.
func (o *interop) register(p *keys.Public) string {
	o.t.Helper()
	a, err := p.Armored()
	if err != nil {
		o.t.Fatal(err)
	}
	o.gpg.Import(a)
	file := filepath.Join(o.dir, p.Fingerprint+".asc")
	if err := os.WriteFile(file, a, 0o600); err != nil {
		o.t.Fatal(err)
	}
	return file
}

// tampered is msg's evidence exported with one byte of the signed data
// changed: the same signature over other data.
func tampered(t *testing.T, ev []byte) []byte {
	t.Helper()
	form, sigArmored, content, err := parseEvidence(ev)
	if err != nil {
		t.Fatal(err)
	}
	content = bytes.Clone(content)
	i := bytes.Index(content, []byte("DIRECTORY"))
	if i < 0 {
		i = bytes.Index(content, []byte("KEY-ROTATE"))
	}
	if i < 0 {
		t.Fatalf("no command in %q", content)
	}
	content[i+1] = 'O'
	bins, err := keys.SplitSignatures(sigArmored)
	if err != nil {
		t.Fatal(err)
	}
	var sigs []*packet.Signature
	for _, b := range bins {
		p, err := packet.Read(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		sigs = append(sigs, p.(*packet.Signature))
	}
	if form == FormInlineClear {
		msg, ok := clearSigned(content, sigArmored, sigs)
		if !ok {
			t.Fatal("tampered clear-signed text does not read back")
		}
		return msg
	}
	msg, err := signedMessage(content, bins, sigs)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// TestExportEvidenceCorpus: the evidence of every accepted mail of the
// corpus (PGP/MIME signed and encrypted, inline clear-signed and
// encrypted, wrapped by a list, mangled by Exchange) exports to a file
// gpg and sq verify as it is, with the signer's key, and refuse with a
// byte changed; the same mail kept whole (an older ccdir's evidence)
// exports the same, unless it is encrypted to the directory key.
func TestExportEvidenceCorpus(t *testing.T) {
	w := newWorld(t)
	o := newInterop(t)
	ctx := context.Background()
	certs := map[string]string{}
	for _, m := range []*member{w.ana, w.bruno, w.eva, w.li} {
		p := m.pub(t)
		certs[p.Fingerprint] = o.register(p)
	}
	kinds := map[string]int{}
	for _, path := range corpusFiles(t) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		meta := readMeta(t, data)
		if meta.expect != "accept" || meta.setup != "" || meta.padTo > 0 {
			continue
		}
		name := strings.TrimSuffix(filepath.Base(path), ".eml")
		t.Run(name, func(t *testing.T) {
			o.t = t
			acc, err := w.p.Process(ctx, envelopeOf(data), bytes.NewReader(data))
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
			key := acc.Contact.Key
			x, err := ExportEvidence(acc.Evidence, key.Armored, acc.SignedAt)
			if err != nil {
				t.Fatalf("ExportEvidence: %v", err)
			}
			if x.Signer != key.Fingerprint || x.Form != acc.Form || !x.SignedAt.Equal(acc.SignedAt) {
				t.Errorf("signer %s form %s at %s, want %s %s %s", x.Signer, x.Form, x.SignedAt, key.Fingerprint, acc.Form, acc.SignedAt)
			}
			wantKind := ExportSignedMessage
			if acc.Form == FormInlineClear {
				wantKind = ExportClearSigned
			}
			if x.Kind != wantKind {
				t.Errorf("kind %s, want %s", x.Kind, wantKind)
			}
			kinds[acc.Form]++
			o.verify(name+".asc", x.Message, key.Fingerprint, certs[key.Fingerprint], false)
			o.verify(name+".bad.asc", tampered(t, acc.Evidence), key.Fingerprint, certs[key.Fingerprint], true)

			whole, err := ExportEvidence(data, key.Armored, acc.SignedAt)
			switch {
			case acc.Encrypted:
				if !errors.Is(err, ErrEvidenceSealed) {
					t.Errorf("whole encrypted mail: %v, want ErrEvidenceSealed", err)
				}
			case err != nil:
				t.Errorf("whole mail: %v", err)
			case !bytes.Equal(whole.Message, x.Message):
				t.Errorf("whole mail exports\n%s\nnot\n%s", whole.Message, x.Message)
			}
			// Checked against another key, it is refused.
			mallory, _ := w.mallory.pub(t).Armored()
			if _, err := ExportEvidence(acc.Evidence, string(mallory), acc.SignedAt); !errors.Is(err, ErrEvidenceBad) {
				t.Errorf("with another key: %v, want ErrEvidenceBad", err)
			}
		})
	}
	for _, f := range []string{FormPGPMIMESigned, FormPGPMIMEEncrypted, FormInlineClear, FormInlineEncrypted} {
		if kinds[f] == 0 {
			t.Errorf("no accepted corpus mail of form %s", f)
		}
	}
}

// TestExportEvidenceGPG: requests signed by GnuPG in every form it makes
// (PGP/MIME detached binary and text-mode signatures, clear-signed,
// signed and encrypted inline and PGP/MIME, detached then encrypted)
// export to files gpg and sq verify.
func TestExportEvidenceGPG(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	o := newInterop(t)
	g := keystest.GPG(t)
	fpr := g.GenKey("Gina Weber <gina@nic.de>", "future-default", "default", "1y")
	pub, err := keys.ParsePublicOne(g.ExportPublic(fpr))
	if err != nil {
		t.Fatal(err)
	}
	cert := o.register(pub)
	_, err = w.store.Update(ctx, directory.Operator, func(tx *directory.Tx) error {
		_, err := tx.AddContact(directory.Contact{Email: "gina@nic.de", Name: "Gina Weber",
			Phones: []directory.Phone{{Number: "+4969123456780"}},
			Roles:  []directory.Role{{TLD: "de", Role: directory.RoleAdmin}},
			Key:    registeredKey(t, pub)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	dirPub, err := w.dir.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	g.Import(dirPub)
	p := &Pipeline{Store: w.store, Secret: w.dir, Config: Config{Addresses: []string{dirAddr}}, Now: time.Now}
	textOf := func(id string) string {
		return "DIRECTORY " + dirAddr + "\nSHOW de\n\n" + id + "\n- a line with a dash\n"
	}
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
		name string
		msg  func() []byte
		kind string
		text bool // a text-mode (0x01) signature
	}{
		{"clearsign", func() []byte { return textMail(hdr("clearsign"), gpg([]byte(textOf("clearsign")), "--clearsign")) }, ExportClearSigned, true},
		{"detach-sign", func() []byte {
			inner := innerOf("detach")
			return signedMail(hdr("detach"), inner, gpg(inner, "--detach-sign", "--armor"))
		}, ExportSignedMessage, false},
		{"textmode-detach-sign", func() []byte {
			inner := innerOf("textmode")
			return signedMail(hdr("textmode"), inner, gpg(inner, "--detach-sign", "--armor", "--textmode"))
		}, ExportSignedMessage, true},
		{"sign-encrypt-inline", func() []byte {
			return textMail(hdr("inline-enc"), gpg([]byte(textOf("inline-enc")), "--sign", "--encrypt", "--armor", "-r", w.dir.Fingerprint()))
		}, ExportSignedMessage, false},
		{"sign-encrypt-pgpmime", func() []byte {
			return encryptedMail(hdr("pgpmime-enc"), gpg(innerOf("pgpmime-enc"), "--sign", "--encrypt", "--armor", "-r", w.dir.Fingerprint()))
		}, ExportSignedMessage, false},
		{"detach-sign-then-encrypt", func() []byte {
			inner := innerOf("nested")
			signed := signedMail("", inner, gpg(inner, "--detach-sign", "--armor", "--textmode"))
			return encryptedMail(hdr("nested"), gpg(signed, "--encrypt", "--armor", "-r", w.dir.Fingerprint()))
		}, ExportSignedMessage, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o.t = t
			acc, err := p.Process(ctx, Envelope{From: "gina@nic.de", To: []string{dirAddr}}, bytes.NewReader(c.msg()))
			if err != nil {
				t.Fatal(err)
			}
			x, err := ExportEvidence(acc.Evidence, acc.Contact.Key.Armored, acc.SignedAt)
			if err != nil {
				t.Fatal(err)
			}
			if x.Kind != c.kind || x.Signer != fpr {
				t.Errorf("kind %s signer %s, want %s %s", x.Kind, x.Signer, c.kind, fpr)
			}
			if text := acc.Signatures[0].raw.sig.SigType == packet.SigTypeText; text != c.text {
				t.Errorf("text-mode signature %v, want %v", text, c.text)
			}
			o.verify(c.name+".asc", x.Message, fpr, cert, false)
			o.verify(c.name+".bad.asc", tampered(t, acc.Evidence), fpr, cert, true)
		})
	}
}

// TestExportEvidenceTwoSignatures: a KEY-ROTATE signed by the old key and
// the new one (PGP/MIME), and a clear-signed text signed by two members,
// export with both signatures, the signer's first; gpg and sq verify
// each with both keys; sq with the signer's alone.
func TestExportEvidenceTwoSignatures(t *testing.T) {
	w := newWorld(t)
	o := newInterop(t)
	at := corpusNow.Add(-time.Minute)
	newKey := newMember(t, "Ana Sousa", "ana@dns.pt", corpusNow.Add(-24*time.Hour), 0)
	newPub, err := newKey.pub(t).Armored()
	if err != nil {
		t.Fatal(err)
	}
	anaPub := w.ana.pub(t)
	anaCert := o.register(anaPub)
	o.register(newKey.pub(t))
	o.register(w.bruno.pub(t))
	entity := mixedEntity(rotateText, "new.asc", string(newPub))
	rotate := signedMail(headers("ana@dns.pt", "export-rotate"), entity, armorSigs(t,
		sigPacket(t, w.ana, entity, at, "ana", false), sigPacket(t, newKey, entity, at, "ana-new", false)))

	text := "DIRECTORY " + dirAddr + "\nWHOAMI\n"
	b, _ := clearsign.Decode([]byte(clearsigned(t, w.ana, text, at, "ref")))
	two := textMail(headers("ana@dns.pt", "export-two"), multiClearsigned(t, text,
		sigPacket(t, w.ana, b.Bytes, at, "ana", true), sigPacket(t, w.bruno, b.Bytes, at, "bruno", true)))
	for name, mail := range map[string][]byte{"rotate": rotate, "two": two} {
		t.Run(name, func(t *testing.T) {
			o.t = t
			acc, err := w.p.Process(context.Background(), Envelope{From: "ana@dns.pt", To: []string{dirAddr}}, bytes.NewReader(mail))
			if err != nil {
				t.Fatal(err)
			}
			x, err := ExportEvidence(acc.Evidence, acc.Contact.Key.Armored, acc.SignedAt)
			if err != nil {
				t.Fatal(err)
			}
			if x.Signer != anaPub.Fingerprint || len(x.Others) != 1 {
				t.Errorf("signer %s others %v", x.Signer, x.Others)
			}
			o.verify(name+".asc", x.Message, anaPub.Fingerprint, anaCert, false)
		})
	}
}

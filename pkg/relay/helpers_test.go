package relay_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
	"github.com/ccdir/ccdir/pkg/inbound"
	"github.com/ccdir/ccdir/pkg/mailcmd"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/pgpmime"
	"github.com/ccdir/ccdir/pkg/relay"
)

const (
	dirAddr  = "directory@ccdir.test"
	listAddr = "list@ccdir.test"
	dirName  = "ccTLD Test Directory"
)

// person is a member whose secret key lives in the test's GnuPG home.
type person struct {
	name, email, tld string
	fpr              string
	keyFile          string // the secret key, armored, for sq
}

func (p *person) uid() string { return p.name + " <" + p.email + ">" }

// world is a directory with four members of four ccTLDs, each with a key
// of another kind: Ana (.pt, the author, ed25519 by gpg), Eva (.de,
// ed25519 by gpg), Joost (.nl, rsa3072 by gpg, encryption subkey) and
// Sven (.se, made by sq: a certification-only primary key with signing and encryption subkeys).
type world struct {
	t       *testing.T
	g       *keystest.GPGHome
	dir     *keys.Secret
	dirCert string // the directory's public key, for sq
	store   *directory.Store
	ob      *outbox.Outbox
	p       *inbound.Pipeline
	r       *relay.Relay
	h       *mailcmd.Handler

	ana, eva, joost, sven *person
}

func sqRun(t testing.TB, dir string, args ...string) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("sq", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "LC_ALL=C")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("sq %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return stdout.Bytes()
}

func newWorld(t *testing.T) *world {
	t.Helper()
	if _, err := exec.LookPath("sq"); err != nil {
		t.Fatalf("sq (Sequoia) not found on PATH: %v\nhint: apt-get install sq", err)
	}
	ctx := context.Background()
	w := &world{t: t, g: keystest.GPG(t)}
	w.dir = keystest.NewSecret(t, dirName, dirAddr)
	dirPub, err := w.dir.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	w.g.Import(dirPub)
	w.dirCert = w.g.WriteFile("dir.asc", dirPub)

	w.ana = &person{name: "Ana Sousa", email: "ana@dns.pt", tld: "pt"}
	w.ana.fpr = w.g.GenKey(w.ana.uid(), "future-default", "default", "never")
	w.eva = &person{name: "Eva Schmidt", email: "eva@nic.de", tld: "de"}
	w.eva.fpr = w.g.GenKey(w.eva.uid(), "future-default", "default", "never")
	w.joost = &person{name: "Joost de Vries", email: "joost@sidn.nl", tld: "nl"}
	w.joost.fpr = w.g.GenKey(w.joost.uid(), "rsa3072", "sign", "never")
	w.g.AddKey(w.joost.fpr, "rsa3072", "encr", "never")
	w.sven = &person{name: "Sven Berg", email: "sven@iis.se", tld: "se"}
	svenKey := filepath.Join(w.g.Dir, "sven.key")
	sqRun(t, w.g.Dir, "key", "generate", "--userid", w.sven.uid(), "--export", svenKey)
	sec, err := os.ReadFile(svenKey)
	if err != nil {
		t.Fatal(err)
	}
	w.g.Import(sec)
	svenCert := sqRun(t, w.g.Dir, "key", "extract-cert", svenKey)
	svenPub, err := keys.ParsePublicOne(svenCert)
	if err != nil {
		t.Fatalf("sq cert: %v", err)
	}
	w.sven.fpr = svenPub.Fingerprint
	for _, p := range []*person{w.ana, w.eva, w.joost} {
		p.keyFile = w.g.WriteFile(p.email+".key", w.g.ExportSecret(p.fpr))
	}
	w.sven.keyFile = svenKey

	info := directory.Info{Name: dirName, Address: dirAddr, ListAddress: listAddr,
		KeyFingerprint: w.dir.Fingerprint(), PublicKey: string(dirPub)}
	w.store, err = directory.Create(ctx, filepath.Join(t.TempDir(), "ccdir.db"), info,
		directory.Options{Signer: w.dir, MaxSecurityContacts: 10, Migrations: slices.Concat(outbox.Migrations, inbound.Migrations, relay.Migrations)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.store.Close() })
	w.update(func(tx *directory.Tx) error {
		for _, m := range []directory.Member{{TLD: "pt", Org: "DNS.PT"}, {TLD: "de", Org: "DENIC eG"}, {TLD: "nl", Org: "SIDN"}, {TLD: "se", Org: "Internetstiftelsen"}} {
			if _, err := tx.AddMember(m); err != nil {
				return err
			}
		}
		return nil
	})
	for i, p := range []*person{w.ana, w.eva, w.joost} {
		w.addContact(p, fmt.Sprintf("+3512100000%02d", i), w.g.ExportPublic(p.fpr))
	}
	w.addContact(w.sven, "+46850000000", svenCert)
	w.ob, err = outbox.Open(ctx, w.store.DB())
	if err != nil {
		t.Fatal(err)
	}
	w.ob.Key = outbox.NewKey()
	w.p = &inbound.Pipeline{Store: w.store, Secret: w.dir, Config: inbound.Config{Addresses: []string{dirAddr, listAddr}}}
	w.r = &relay.Relay{Store: w.store, Secret: w.dir, Outbox: w.ob, Config: relay.Config{Tag: "[TLD-OPS]"}}
	w.h = &mailcmd.Handler{Store: w.store, Secret: w.dir, Outbox: w.ob}
	return w
}

func (w *world) update(fn func(tx *directory.Tx) error) {
	w.t.Helper()
	if _, err := w.store.Update(context.Background(), directory.Operator, fn); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) addContact(p *person, phone string, armored []byte) {
	w.t.Helper()
	pub, err := keys.ParsePublicOne(armored)
	if err != nil {
		w.t.Fatal(err)
	}
	k := &directory.Key{Fingerprint: pub.Fingerprint, Algorithm: pub.Algorithm,
		Created: pub.Created.UTC().Format(time.RFC3339), Armored: string(armored)}
	if !pub.Expires.IsZero() {
		k.Expires = pub.Expires.UTC().Format(time.RFC3339)
	}
	w.update(func(tx *directory.Tx) error {
		_, err := tx.AddContact(directory.Contact{Email: p.email, Name: p.name,
			Phones: []directory.Phone{{Number: phone}}, Roles: []directory.Role{{TLD: p.tld, Role: directory.RoleSecurity}}, Key: k})
		return err
	})
}

func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

// gpgPost is a post by p made with gpg: the MIME entity inner (CRLF)
// signed and encrypted to the directory key in one OpenPGP message
// (RFC 3156 §6.2), inside multipart/encrypted with the usual noise in
// the outer header.
func (w *world) gpgPost(p *person, outerFrom, inner string) []byte {
	w.t.Helper()
	in := w.g.WriteFile("post.eml", []byte(crlf(inner)))
	out := filepath.Join(w.g.Dir, "post.asc")
	os.Remove(out)
	w.g.MustRun("--pinentry-mode", "loopback", "--passphrase", "", "--trust-model", "always", "--armor",
		"-u", p.fpr, "-r", w.dir.Fingerprint(), "--sign", "--encrypt", "--output", out, in)
	asc, err := os.ReadFile(out)
	if err != nil {
		w.t.Fatal(err)
	}
	const b = "enc-boundary-5a1f"
	return []byte(crlf(w.noise(outerFrom, "alert") +
		`Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="` + b + "\"\n\n" +
		"--" + b + "\nContent-Type: application/pgp-encrypted\n\nVersion: 1\n\n" +
		"--" + b + "\nContent-Type: application/octet-stream; name=\"encrypted.asc\"\n\n" +
		string(asc) + "\n--" + b + "--\n"))
}

// clearPost is a post by p: text clear-signed with gpg, in a plain mail.
func (w *world) clearPost(p *person, outerFrom, subject, text string) []byte {
	w.t.Helper()
	stdout, stderr, err := w.g.RunInput([]byte(text), "--pinentry-mode", "loopback", "--passphrase", "", "-u", p.fpr, "--clearsign")
	if err != nil {
		w.t.Fatalf("gpg --clearsign: %v\n%s", err, stderr)
	}
	h := strings.Replace(w.noise(outerFrom, subject), "Subject: alert", "Subject: "+subject, 1)
	return []byte(crlf(h + "Content-Type: text/plain; charset=utf-8\n\n" + string(stdout)))
}

func (w *world) noise(from, subject string) string {
	return "Return-Path: <" + from + ">\n" +
		"Received: from mail.example (mail.example [192.0.2.77]) by mx.ccdir.test\n" +
		"From: <" + from + ">\nTo: <" + listAddr + ">\nSubject: " + subject + "\n" +
		"Date: " + time.Now().Format(time.RFC1123Z) + "\n" +
		"Message-ID: <secret-origin-4711@mail.example>\nX-Mailer: Leaky Mailer 1.0 (192.0.2.77)\nMIME-Version: 1.0\n"
}

// process runs a message through inbound, to the list or to the
// directory address.
func (w *world) process(to string, msg []byte) (*inbound.Accepted, error) {
	return w.p.Process(context.Background(), inbound.Envelope{From: "someone@mail.example", To: []string{to}}, bytes.NewReader(msg))
}

// post sends msg to the list and returns the relay's result.
func (w *world) post(msg []byte) *relay.Result {
	w.t.Helper()
	a, err := w.process(listAddr, msg)
	if err != nil {
		w.t.Fatalf("inbound: %v", err)
	}
	res, err := w.r.Handle(context.Background(), a)
	if err != nil {
		w.t.Fatalf("relay: %v", err)
	}
	return res
}

// command sends a signed command mail from p to the directory address.
func (w *world) command(p *person, lines string) *mailcmd.Result {
	w.t.Helper()
	a, err := w.process(dirAddr, w.clearPost(p, p.email, "commands", "DIRECTORY "+dirAddr+"\n"+lines+"\n"))
	if err != nil {
		w.t.Fatalf("inbound: %v", err)
	}
	res, err := w.h.Handle(context.Background(), a)
	if err != nil {
		w.t.Fatalf("mailcmd: %v", err)
	}
	return res
}

// copies returns the queued messages of kind and ref by recipient.
func (w *world) copies(kind, ref string) map[string][]byte {
	w.t.Helper()
	// A copy is its head, the shared encrypted post, and its tail.
	q := `SELECT o.rcpt, o.body, b.data, o.tail FROM outbox o LEFT JOIN outbox_blob b ON b.id = o.blob WHERE o.kind = ?`
	args := []any{kind}
	if ref != "" {
		q += ` AND o.ref = ?`
		args = append(args, ref)
	}
	rows, err := w.store.DB().Query(q, args...)
	if err != nil {
		w.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var to string
		var head, shared, tail []byte
		if err := rows.Scan(&to, &head, &shared, &tail); err != nil {
			w.t.Fatal(err)
		}
		out[to] = append(append(head, shared...), tail...)
	}
	return out
}

// opened is a decrypted copy.
type opened struct {
	header mail.Header
	inner  *pgpmime.Inner
	text   string
}

// open decrypts and verifies a copy to p with gpg, and (if withSQ) with
// sq too, and returns what it says.
func (w *world) open(p *person, msg []byte, withSQ bool) *opened {
	w.t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		w.t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/encrypted" {
		w.t.Fatalf("Content-Type %q", m.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	if _, err := mr.NextPart(); err != nil {
		w.t.Fatal(err)
	}
	p2, err := mr.NextPart()
	if err != nil {
		w.t.Fatal(err)
	}
	asc, _ := io.ReadAll(p2)
	encPath := w.g.WriteFile("copy.asc", asc)

	// gpg: decrypt, then verify the detached signature of the signed part.
	plainPath := filepath.Join(w.g.Dir, "copy.plain")
	os.Remove(plainPath)
	stdout, stderr, err := w.g.Run("--status-fd", "1", "--pinentry-mode", "loopback", "--passphrase", "", "--output", plainPath, "--decrypt", encPath)
	status := string(stdout) + string(stderr)
	if err != nil || !strings.Contains(status, "DECRYPTION_OKAY") || !strings.Contains(status, "GOODMDC") {
		w.t.Fatalf("gpg --decrypt for %s: %v\n%s", p.email, err, status)
	}
	plain, err := os.ReadFile(plainPath)
	if err != nil {
		w.t.Fatal(err)
	}
	part, sig := splitSigned(w.t, plain)
	sigPath := w.g.WriteFile("copy.sig", sig)
	partPath := w.g.WriteFile("copy.part", part)
	stdout, stderr, err = w.g.Run("--status-fd", "1", "--verify", sigPath, partPath)
	status = string(stdout) + string(stderr)
	if err != nil || !strings.Contains(status, "[GNUPG:] VALIDSIG "+w.dir.Fingerprint()) {
		w.t.Fatalf("gpg --verify for %s: %v\n%s", p.email, err, status)
	}
	if withSQ {
		out := sqRun(w.t, w.g.Dir, "decrypt", "--recipient-key", p.keyFile, encPath)
		if !bytes.Equal(out, plain) {
			w.t.Fatalf("sq decrypted something else than gpg for %s", p.email)
		}
		sqRun(w.t, w.g.Dir, "verify", "--detached", sigPath, "--signer-cert", w.dirCert, partPath)
	}
	in, err := pgpmime.ParseInner(part)
	if err != nil {
		w.t.Fatal(err)
	}
	return &opened{header: m.Header, inner: in, text: string(in.Parts[0].Body)}
}

// splitSigned returns the signed part and the signature of a
// multipart/signed entity, read with the standard library.
func splitSigned(t testing.TB, entity []byte) (part, sig []byte) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(entity))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/signed" {
		t.Fatalf("Content-Type %q", m.Header.Get("Content-Type"))
	}
	body, _ := io.ReadAll(m.Body)
	delim := []byte("--" + params["boundary"])
	i := bytes.Index(body, delim)
	rest := body[i+len(delim)+2:]
	j := bytes.Index(rest, append([]byte("\r\n"), delim...))
	part = rest[:j]
	sigPart := rest[j+2+len(delim)+2:]
	k := bytes.Index(sigPart, []byte("\r\n\r\n"))
	end := bytes.Index(sigPart, append([]byte("\r\n"), delim...))
	return part, sigPart[k+4 : end]
}

func b64Lines(b []byte) string {
	s := base64.StdEncoding.EncodeToString(b)
	var out strings.Builder
	for len(s) > 76 {
		out.WriteString(s[:76] + "\n")
		s = s[76:]
	}
	return out.String() + s + "\n"
}

// gpgText is an encrypted post by p (gpgPost) of one text/plain part,
// its Subject signed (in the encrypted entity).
func (w *world) gpgText(p *person, subject, text string) []byte {
	w.t.Helper()
	return w.gpgPost(p, p.email, "Subject: "+subject+"\nContent-Type: text/plain; charset=utf-8\n\n"+text)
}

// signedPost is a PGP/MIME signed post by p (RFC 3156 §5, not
// encrypted): the MIME entity inner (its header, a blank line, its body)
// with a detached signature made by gpg, under the outer Subject subject.
func (w *world) signedPost(p *person, subject, inner string) []byte {
	w.t.Helper()
	part := crlf(inner)
	stdout, stderr, err := w.g.RunInput([]byte(part), "--pinentry-mode", "loopback", "--passphrase", "", "-u", p.fpr, "--armor", "--detach-sign")
	if err != nil {
		w.t.Fatalf("gpg --detach-sign: %v\n%s", err, stderr)
	}
	const b = "sig-boundary-77c3"
	h := strings.Replace(w.noise(p.email, subject), "Subject: alert", "Subject: "+subject, 1)
	return []byte(crlf(h) + crlf(`Content-Type: multipart/signed; micalg=pgp-sha256; protocol="application/pgp-signature"; boundary="`+b+"\"\n\n"+
		"--"+b+"\n") + part + crlf("\n--"+b+"\nContent-Type: application/pgp-signature; name=\"signature.asc\"\n\n") +
		crlf(string(stdout)) + crlf("\n--"+b+"--\n"))
}

// inlineSigned is a post by p: text signed (not clear-signed, not
// encrypted) with gpg --sign --armor, in a plain mail.
func (w *world) inlineSigned(p *person, subject, text string) []byte {
	w.t.Helper()
	stdout, stderr, err := w.g.RunInput([]byte(text), "--pinentry-mode", "loopback", "--passphrase", "", "-u", p.fpr, "--armor", "--sign")
	if err != nil {
		w.t.Fatalf("gpg --sign: %v\n%s", err, stderr)
	}
	h := strings.Replace(w.noise(p.email, subject), "Subject: alert", "Subject: "+subject, 1)
	return []byte(crlf(h + "Content-Type: text/plain; charset=utf-8\n\n" + string(stdout)))
}

// queuedCount counts the queued messages of kind, to anyone.
func (w *world) queuedCount(kind string) int {
	w.t.Helper()
	var n int
	if err := w.store.DB().QueryRow(`SELECT count(*) FROM outbox WHERE kind = ?`, kind).Scan(&n); err != nil {
		w.t.Fatal(err)
	}
	return n
}

// inlineEncrypted is a post by p: text signed and encrypted to the
// directory key with gpg --sign --encrypt --armor, in a plain mail.
func (w *world) inlineEncrypted(p *person, subject, text string) []byte {
	w.t.Helper()
	stdout, stderr, err := w.g.RunInput([]byte(text), "--pinentry-mode", "loopback", "--passphrase", "", "--trust-model", "always",
		"-u", p.fpr, "-r", w.dir.Fingerprint(), "--armor", "--sign", "--encrypt")
	if err != nil {
		w.t.Fatalf("gpg --sign --encrypt: %v\n%s", err, stderr)
	}
	h := strings.Replace(w.noise(p.email, subject), "Subject: alert", "Subject: "+subject, 1)
	return []byte(crlf(h + "Content-Type: text/plain; charset=utf-8\n\n" + string(stdout)))
}

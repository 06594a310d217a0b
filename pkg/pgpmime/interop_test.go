package pgpmime_test

// Interoperability with GnuPG 2.2 and Sequoia (sq 0.27): both decrypt what
// Encrypt and BuildEncrypted, and Seal and Copy, make for keys of their own making and report
// a good signature by the directory key. These tests never skip: a missing
// tool fails them.

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"

	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// extractEncrypted returns the encrypted.asc part of a multipart/encrypted
// mail, read with the standard library (independent of pgpmime).
func extractEncrypted(t *testing.T, msg []byte) []byte {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/encrypted" || params["protocol"] != "application/pgp-encrypted" {
		t.Fatalf("Content-Type %q (%v)", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	p1, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	v, _ := io.ReadAll(p1)
	if p1.Header.Get("Content-Type") != "application/pgp-encrypted" || strings.TrimSpace(string(v)) != "Version: 1" {
		t.Fatalf("first part %q: %q", p1.Header.Get("Content-Type"), v)
	}
	p2, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if _, ps, _ := mime.ParseMediaType(p2.Header.Get("Content-Type")); ps["name"] != "encrypted.asc" {
		t.Fatalf("second part %q", p2.Header.Get("Content-Type"))
	}
	asc, err := io.ReadAll(p2)
	if err != nil {
		t.Fatal(err)
	}
	return asc
}

type interopRcpt struct {
	name    string
	addr    gomail.Address
	fpr     string
	wantSub string // the encryption subkey expected, if several
	sq      bool
}

func TestInteropGnuPGAndSequoia(t *testing.T) {
	if _, err := exec.LookPath("sq"); err != nil {
		t.Fatalf("sq (Sequoia) not found on PATH: %v\nhint: apt-get install sq", err)
	}
	g := keystest.GPG(t)
	dir := keystest.NewSecret(t, "ccTLD Directory", "directory@cctld-dir.example")
	dirPub, err := dir.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	g.Import(dirPub)
	dirCert := g.WriteFile("dir.asc", dirPub)

	uid := func(a gomail.Address) string { return a.Name + " <" + a.Address + ">" }
	var rcpts []interopRcpt
	// Ed25519 / Cv25519, gpg's future-default.
	rcpts = append(rcpts, interopRcpt{name: "ed25519", addr: conceicao,
		fpr: g.GenKey(uid(conceicao), "future-default", "default", "never"), sq: true})
	// RSA-3072: a signing primary key and an encryption subkey.
	fpr := g.GenKey(uid(fatima), "rsa3072", "sign", "never")
	g.AddKey(fpr, "rsa3072", "encr", "never")
	rcpts = append(rcpts, interopRcpt{name: "rsa3072", addr: fatima, fpr: fpr, sq: true})
	// RSA-4096: one primary key that signs and encrypts (one slow keygen).
	rcpts = append(rcpts, interopRcpt{name: "rsa4096", addr: wangWei,
		fpr: g.GenKey(uid(wangWei), "rsa4096", "cert,sign,encr", "never")})
	// RSA-2048, the smallest RSA key accepted: its PKESK leaves the third
	// possible remainder of a base64 group (see Copy).
	rsa2048 := gomail.Address{Name: "Ngozi Okafor", Address: "ngozi@nic.ng"}
	rcpts = append(rcpts, interopRcpt{name: "rsa2048", addr: rsa2048,
		fpr: g.GenKey(uid(rsa2048), "rsa2048", "cert,sign,encr", "never"), sq: true})
	// Two encryption subkeys: the older made two hours ago, the newer now.
	// The newer one must be used.
	fpr = g.GenKeyAt(time.Now().Add(-2*time.Hour), uid(ivan), "future-default", "default", "never")
	sub := g.AddKey(fpr, "cv25519", "encr", "never")
	rcpts = append(rcpts, interopRcpt{name: "two-subkeys", addr: ivan, fpr: fpr, wantSub: sub, sq: true})

	now := time.Now()
	p := testProtected()
	p.Date = now.Truncate(time.Second)
	p.ToGroup = ""
	p.To = []gomail.Address{conceicao, fatima, wangWei, ivan}
	inner, err := pgpmime.BuildInner(p, testParts())
	if err != nil {
		t.Fatal(err)
	}
	signed, err := pgpmime.Sign(inner, dir)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := pgpmime.NewEncrypter(signed, now)
	if err != nil {
		t.Fatal(err)
	}
	sealed := enc.Seal(nil)
	shared := map[int]bool{}

	for _, r := range rcpts {
		t.Run(r.name, func(t *testing.T) {
			pub, err := keys.ParsePublicOne(g.ExportPublic(r.fpr))
			if err != nil {
				t.Fatal(err)
			}
			if err := pub.Check(now); err != nil {
				t.Fatal(err)
			}
			rcpt, err := pgpmime.NewRecipient(pub, now)
			if err != nil {
				t.Fatal(err)
			}
			// Two ways to the same mail: one OpenPGP message made for
			// this recipient alone (Encrypt), and the copy that digests
			// and list posts use, whose encrypted packet and session key
			// are shared with the other recipients (Seal, Copy).
			var asc, single bytes.Buffer
			if err := enc.Encrypt(&asc, pub, nil); err != nil {
				t.Fatal(err)
			}
			if err := pgpmime.BuildEncrypted(&single, testOuter(r.addr), asc.Bytes()); err != nil {
				t.Fatal(err)
			}
			c, err := sealed.Copy(rcpt, testOuter(r.addr), nil)
			if err != nil {
				t.Fatal(err)
			}
			shared[c.Shared] = true
			for way, msg := range map[string][]byte{"single": single.Bytes(), "shared": sealed.Bytes(c)} {
				t.Run(way, func(t *testing.T) {
					interopCheck(t, g, r, way, msg, signed.Bytes(), dir.Fingerprint(), dirCert, p)
				})
			}
		})
	}
	// The three ways the recipient's bytes can end within a base64 group
	// are all exercised (Ed25519, RSA-2048 and RSA-4096 keys differ).
	if len(shared) != 3 {
		t.Errorf("copies used shared parts %v, want 3 different ones", shared)
	}

	// A personal reply, signed and encrypted in one message (§6.2).
	t.Run("sign-encrypt", func(t *testing.T) {
		r := rcpts[0]
		pub, err := keys.ParsePublicOne(g.ExportPublic(r.fpr))
		if err != nil {
			t.Fatal(err)
		}
		var asc, msg bytes.Buffer
		if err := pgpmime.SignEncrypt(&asc, inner, dir, pub); err != nil {
			t.Fatal(err)
		}
		if err := pgpmime.BuildEncrypted(&msg, testOuter(r.addr), asc.Bytes()); err != nil {
			t.Fatal(err)
		}
		encAsc := g.WriteFile("reply.asc", extractEncrypted(t, msg.Bytes()))
		plain, status := gpgDecrypt(t, g, encAsc)
		if !bytes.Equal(plain, inner) || !strings.Contains(status, "[GNUPG:] VALIDSIG "+dir.Fingerprint()) {
			t.Fatalf("gpg: plaintext equal %v\n%s", bytes.Equal(plain, inner), status)
		}
		key := g.WriteFile("key-reply.asc", g.ExportSecret(r.fpr))
		out := sqRun(t, g.Dir, "decrypt", "--recipient-key", key, "--signer-cert", dirCert, encAsc)
		if !bytes.Equal(out, inner) {
			t.Fatal("sq decrypted something else")
		}
	})
}

// interopCheck has gpg, and sq when r.sq, decrypt msg and verify the
// signed entity inside, which must be want.
func interopCheck(t *testing.T, g *keystest.GPGHome, r interopRcpt, way string, msg, want []byte, dirFpr, dirCert string, p pgpmime.Protected) {
	encAsc := g.WriteFile("msg-"+r.name+"-"+way+".asc", extractEncrypted(t, msg))

	// gpg decrypts.
	plain, status := gpgDecrypt(t, g, encAsc)
	if !bytes.Equal(plain, want) {
		t.Fatalf("gpg decrypted something else:\n%.300s", plain)
	}
	if r.wantSub != "" && !strings.Contains(status, "ENC_TO "+r.wantSub[len(r.wantSub)-16:]) {
		t.Errorf("not encrypted to the newest subkey %s:\n%s", r.wantSub, status)
	}
	// gpg verifies the signed part.
	part, sig := splitSigned(t, plain)
	gpgVerifyGood(t, g, dirFpr, sig, part)
	checkDecodedHeaders(t, part, p)

	if r.sq {
		key := g.WriteFile("key-"+r.name+".asc", g.ExportSecret(r.fpr))
		out := sqRun(t, g.Dir, "decrypt", "--recipient-key", key, encAsc)
		if !bytes.Equal(out, want) {
			t.Fatalf("sq decrypted something else:\n%.300s", out)
		}
		part, sig := splitSigned(t, out)
		sigPath := g.WriteFile("sq-"+r.name+"-"+way+".sig", sig)
		partPath := g.WriteFile("sq-"+r.name+"-"+way+".part", part)
		sqRun(t, g.Dir, "verify", "--detached", sigPath, "--signer-cert", dirCert, partPath)
	}
}

func gpgDecrypt(t *testing.T, g *keystest.GPGHome, path string) (plain []byte, status string) {
	t.Helper()
	out := filepath.Join(g.Dir, "plain.out")
	os.Remove(out)
	stdout, stderr, err := g.Run("--status-fd", "1", "--pinentry-mode", "loopback", "--passphrase", "",
		"--output", out, "--decrypt", path)
	status = string(stdout) + string(stderr)
	if err != nil || !strings.Contains(status, "[GNUPG:] DECRYPTION_OKAY") || strings.Contains(status, "DECRYPTION_FAILED") {
		t.Fatalf("gpg --decrypt: %v\n%s", err, status)
	}
	if !strings.Contains(status, "[GNUPG:] GOODMDC") {
		t.Errorf("no MDC (SEIPDv1 integrity):\n%s", status)
	}
	plain, err = os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return plain, status
}

func gpgVerifyGood(t *testing.T, g *keystest.GPGHome, fpr string, sig, data []byte) {
	t.Helper()
	sigPath := g.WriteFile("part.sig", sig)
	dataPath := g.WriteFile("part.data", data)
	stdout, stderr, err := g.Run("--status-fd", "1", "--verify", sigPath, dataPath)
	out := string(stdout) + string(stderr)
	if err != nil || !strings.Contains(out, "[GNUPG:] VALIDSIG "+fpr) || !strings.Contains(out, "Good signature") {
		t.Fatalf("gpg --verify: %v\n%s", err, out)
	}
	// Changed by one byte, the part must fail.
	bad := bytes.Clone(data)
	bad[len(bad)/2] ^= 1
	g.WriteFile("part.data", bad)
	if _, _, err := g.Run("--verify", sigPath, dataPath); err == nil {
		t.Fatal("gpg --verify accepted a changed part")
	}
}

// checkDecodedHeaders reads the protected headers of the signed part with
// go-message and compares them with what was given.
func checkDecodedHeaders(t *testing.T, part []byte, p pgpmime.Protected) {
	t.Helper()
	e, err := message.Read(bytes.NewReader(part))
	if err != nil {
		t.Fatal(err)
	}
	h := gomail.Header{Header: e.Header}
	if s, err := h.Subject(); err != nil || s != p.Subject {
		t.Errorf("Subject %q (%v), want %q", s, err, p.Subject)
	}
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 || *from[0] != p.From {
		t.Errorf("From %v (%v), want %v", from, err, p.From)
	}
	to, err := h.AddressList("To")
	if err != nil || len(to) != len(p.To) {
		t.Fatalf("To %v (%v)", to, err)
	}
	for i := range to {
		if *to[i] != p.To[i] {
			t.Errorf("To[%d] %q, want %q", i, *to[i], p.To[i])
		}
	}
	in, err := pgpmime.ParseInner(part)
	if err != nil {
		t.Fatal(err)
	}
	body := string(in.Parts[0].Body)
	for _, name := range []string{"Conceição Ferreira", "فاطمة العتيبي", "王伟", "Иван Петров"} {
		if !strings.Contains(body, name) {
			t.Errorf("body lost %q", name)
		}
	}
}

func sqRun(t *testing.T, dir string, args ...string) []byte {
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

package pgpmime_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/textproto"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"

	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

func TestBuildInnerGolden(t *testing.T) {
	inner, err := pgpmime.BuildInner(testProtected(), testParts())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "inner.golden", inner)
	again, err := pgpmime.BuildInner(testProtected(), testParts())
	if err != nil || !bytes.Equal(inner, again) {
		t.Fatalf("BuildInner is not deterministic (err %v)", err)
	}
	checkCRLF(t, inner)
	for line := range strings.SplitSeq(string(inner), "\r\n") {
		if strings.HasPrefix(line, "From ") {
			t.Errorf("a line starts with \"From \": %q", line)
		}
		// An RFC 2231 parameter cannot be folded without continuations,
		// which Go's mime package does not write; 998 is the hard limit.
		if len(line) > 78 && !strings.HasPrefix(line, " filename*=") || len(line) > 998 {
			t.Errorf("line of %d characters: %q", len(line), line)
		}
	}
}

func TestBuildEncryptedGolden(t *testing.T) {
	// A fixed armored text: BuildEncrypted only frames it.
	armored := "-----BEGIN PGP MESSAGE-----\n\nwV4DAAAAAAAAAAASAQdAfixed+test+data+only+not+a+real+message+AAAAAAAA\nAAAA\n=AbCd\n-----END PGP MESSAGE-----\n"
	var out bytes.Buffer
	o := testOuter(conceicao)
	if err := pgpmime.BuildEncrypted(&out, o, []byte(armored)); err != nil {
		t.Fatal(err)
	}
	golden(t, "encrypted.golden", out.Bytes())
	checkCRLF(t, out.Bytes())
	var again bytes.Buffer
	if err := pgpmime.BuildEncrypted(&again, o, []byte(armored)); err != nil || !bytes.Equal(out.Bytes(), again.Bytes()) {
		t.Fatalf("BuildEncrypted is not deterministic (err %v)", err)
	}

	// The outer headers decode to what was given, and never carry the real subject.
	e, err := message.Read(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	h := mail.Header{Header: e.Header}
	if s, _ := h.Subject(); s != "ccTLD directory" {
		t.Errorf("outer Subject %q", s)
	}
	if to, _ := h.AddressList("To"); len(to) != 1 || *to[0] != conceicao {
		t.Errorf("outer To %v", to)
	}
	if from, _ := h.AddressList("From"); len(from) != 1 || *from[0] != dirAddr {
		t.Errorf("outer From %v", from)
	}
	if h.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("Auto-Submitted %q", h.Get("Auto-Submitted"))
	}
}

func testOuter(to mail.Address) pgpmime.Outer {
	return pgpmime.Outer{
		From:      dirAddr,
		To:        to,
		Subject:   "ccTLD directory",
		Date:      testNow,
		MessageID: "digest-42.1@cctld-dir.example",
		Extra: []pgpmime.Field{
			{Key: "Auto-Submitted", Value: "auto-generated"},
			{Key: "List-Id", Value: "ccTLD security contacts <contacts.cctld-dir.example>"},
		},
	}
}

func checkCRLF(t *testing.T, b []byte) {
	t.Helper()
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') || c == '\r' && (i+1 == len(b) || b[i+1] != '\n') {
			t.Fatalf("bare CR or LF at byte %d: %q", i, b[max(0, i-20):min(len(b), i+20)])
		}
	}
}

// TestRoundTrip goes the whole way in Go: build, sign, encrypt, frame,
// open, verify, parse; the bytes and the parts come back unchanged.
func TestRoundTrip(t *testing.T) {
	dir := dirKey(t)
	inner, err := pgpmime.BuildInner(testProtected(), testParts())
	if err != nil {
		t.Fatal(err)
	}
	signed, err := pgpmime.Sign(inner, dir)
	if err != nil {
		t.Fatal(err)
	}
	if signed.MicAlg() != "pgp-sha256" {
		t.Errorf("micalg %q", signed.MicAlg())
	}
	checkCRLF(t, signed.Bytes())
	enc, err := pgpmime.NewEncrypter(signed, testNow)
	if err != nil {
		t.Fatal(err)
	}
	for i, who := range []mail.Address{conceicao, fatima, wangWei, ivan} {
		rk := rcptKey(t, who.Name, who.Address)
		var asc bytes.Buffer
		if err := enc.Encrypt(&asc, rk.Public(), chachaRand(byte(i))); err != nil {
			t.Fatal(err)
		}
		checkArmorCRC(t, asc.Bytes())
		var msg bytes.Buffer
		if err := pgpmime.BuildEncrypted(&msg, testOuter(who), asc.Bytes()); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(msg.Bytes(), []byte("Conceição")) || bytes.Contains(msg.Bytes(), []byte("serial 42")) {
			t.Fatal("plaintext in the encrypted mail")
		}
		o, err := pgpmime.Open(bytes.NewReader(msg.Bytes()), rk, pgpmime.OpenOptions{Now: testNow})
		if err != nil {
			t.Fatal(err)
		}
		if !o.Encrypted || o.Signed {
			t.Errorf("Opened: encrypted %v signed %v", o.Encrypted, o.Signed)
		}
		if !bytes.Equal(o.Entity, signed.Bytes()) {
			t.Fatalf("decrypted entity differs from the signed entity")
		}
		v, err := pgpmime.Verify(o.Entity, []*keys.Public{rk.Public(), dir.Public()}, testNow)
		if err != nil {
			t.Fatal(err)
		}
		if v.Fingerprint != dir.Fingerprint() || !v.SignedAt.Equal(testNow) {
			t.Errorf("verified %s at %v, want %s at %v", v.Fingerprint, v.SignedAt, dir.Fingerprint(), testNow)
		}
		if !bytes.Equal(v.Signed, inner) {
			t.Fatalf("signed part differs from the inner entity")
		}
		checkParsed(t, v.Signed, testProtected(), testParts())

		// Another recipient's key cannot open it.
		other := rcptKey(t, "Other", "other@example.org")
		if _, err := pgpmime.Open(bytes.NewReader(msg.Bytes()), other, pgpmime.OpenOptions{Now: testNow}); !errors.Is(err, pgpmime.ErrDecrypt) {
			t.Errorf("Open with the wrong key: %v, want ErrDecrypt", err)
		}
	}
}

func checkParsed(t *testing.T, entity []byte, p pgpmime.Protected, parts []pgpmime.Part) {
	t.Helper()
	in, err := pgpmime.ParseInner(entity)
	if err != nil {
		t.Fatal(err)
	}
	if !in.ProtectedHeaders {
		t.Error("no protected-headers=v1")
	}
	got := in.Protected
	if !got.Date.Equal(p.Date) {
		t.Errorf("Date %v, want %v", got.Date, p.Date)
	}
	got.Date = p.Date
	if !reflect.DeepEqual(got, p) {
		t.Errorf("protected headers:\n got %#v\nwant %#v", got, p)
	}
	if len(in.Parts) != len(parts) {
		t.Fatalf("%d parts, want %d", len(in.Parts), len(parts))
	}
	for i, want := range parts {
		g := in.Parts[i]
		wantType := want.ContentType
		if wantType == "" {
			wantType = "text/plain"
		}
		wantBody := want.Body
		if strings.HasPrefix(wantType, "text/") {
			wantBody = []byte(strings.ReplaceAll(strings.ReplaceAll(string(wantBody), "\r\n", "\n"), "\n", "\r\n"))
			if g.Params["charset"] != "utf-8" {
				t.Errorf("part %d: charset %q", i, g.Params["charset"])
			}
		}
		if g.ContentType != wantType || g.Filename != want.Filename || !bytes.Equal(g.Body, wantBody) {
			t.Errorf("part %d: got %s %q %q\nwant %s %q %q", i, g.ContentType, g.Filename, g.Body, wantType, want.Filename, wantBody)
		}
	}
}

// checkArmorCRC checks the armor with go-crypto, which verifies the CRC-24
// line, and requires that line to be there.
func checkArmorCRC(t *testing.T, asc []byte) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(string(asc), "\r\n"), "\r\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[len(lines)-2], "=") || len(lines[len(lines)-2]) != 5 {
		t.Fatalf("armor has no CRC-24 line:\n%s", asc)
	}
	blk, err := armor.Decode(bytes.NewReader(asc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(blk.Body); err != nil {
		t.Fatalf("armor body (CRC): %v", err)
	}
}

func TestVerifyDetectsChanges(t *testing.T) {
	dir := dirKey(t)
	ring := []*keys.Public{dir.Public()}
	inner, err := pgpmime.BuildInner(testProtected(), testParts())
	if err != nil {
		t.Fatal(err)
	}
	signed, err := pgpmime.Sign(inner, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pgpmime.Verify(signed.Bytes(), ring, testNow); err != nil {
		t.Fatalf("unchanged: %v", err)
	}
	// An LF copy still verifies (RFC 3156 canonical form is restored).
	lf := bytes.ReplaceAll(signed.Bytes(), []byte("\r\n"), []byte("\n"))
	if v, err := pgpmime.Verify(lf, ring, testNow); err != nil || !bytes.Equal(v.Signed, inner) {
		t.Fatalf("LF copy: %v", err)
	}

	part, _ := splitSigned(t, signed.Bytes())
	off := bytes.Index(signed.Bytes(), part)
	for _, at := range []int{0, 10, len(part) / 2, len(part) - 5} {
		b := bytes.Clone(signed.Bytes())
		b[off+at] ^= 0x01
		if _, err := pgpmime.Verify(b, ring, testNow); !errors.Is(err, pgpmime.ErrBadSignature) && !errors.Is(err, pgpmime.ErrMalformed) {
			t.Errorf("byte %d of the signed part changed: %v, want a bad signature", at, err)
		}
	}
	// One more space in the subject field changes nothing visible after
	// decoding, but breaks the signature.
	b := bytes.Replace(signed.Bytes(), []byte("Subject:"), []byte("Subject: "), 1)
	if bytes.Equal(b, signed.Bytes()) {
		t.Fatal("no Subject field found")
	}
	if _, err := pgpmime.Verify(b, ring, testNow); !errors.Is(err, pgpmime.ErrBadSignature) {
		t.Errorf("changed Subject header: %v, want ErrBadSignature", err)
	}
	// A signer outside the keyring.
	other := rcptKey(t, "Other", "other@example.org")
	if _, err := pgpmime.Verify(signed.Bytes(), []*keys.Public{other.Public()}, testNow); !errors.Is(err, pgpmime.ErrBadSignature) {
		t.Errorf("unknown signer: %v, want ErrBadSignature", err)
	}
	// A signature from the future.
	if _, err := pgpmime.Verify(signed.Bytes(), ring, testNow.Add(-time.Hour)); !errors.Is(err, pgpmime.ErrBadSignature) {
		t.Errorf("signature after now: %v, want ErrBadSignature", err)
	}
}

func TestSignEncrypt(t *testing.T) {
	dir := dirKey(t)
	rk := rcptKey(t, ivan.Name, ivan.Address)
	p := testProtected()
	p.ToGroup, p.To = "", []mail.Address{ivan}
	inner, err := pgpmime.BuildInner(p, testParts()[:1])
	if err != nil {
		t.Fatal(err)
	}
	var asc bytes.Buffer
	if err := pgpmime.SignEncrypt(&asc, inner, dir, rk.Public()); err != nil {
		t.Fatal(err)
	}
	checkArmorCRC(t, asc.Bytes())
	var msg bytes.Buffer
	if err := pgpmime.BuildEncrypted(&msg, testOuter(ivan), asc.Bytes()); err != nil {
		t.Fatal(err)
	}
	o, err := pgpmime.Open(&msg, rk, pgpmime.OpenOptions{Now: testNow, Keyring: []*keys.Public{dir.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	if !o.Encrypted || !o.Signed || o.SignatureErr != nil || o.Signer != dir.Fingerprint() || !o.SignedAt.Equal(testNow) {
		t.Fatalf("opened: encrypted %v signed %v signer %q at %v, err %v", o.Encrypted, o.Signed, o.Signer, o.SignedAt, o.SignatureErr)
	}
	if !bytes.Equal(o.Entity, inner) {
		t.Fatal("decrypted entity differs")
	}
	checkParsed(t, o.Entity, p, testParts()[:1])

	// Without the directory key in the keyring the signature is unknown.
	msg.Reset()
	pgpmime.BuildEncrypted(&msg, testOuter(ivan), asc.Bytes())
	o, err = pgpmime.Open(&msg, rk, pgpmime.OpenOptions{Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if !o.Signed || o.Signer != "" || !errors.Is(o.SignatureErr, pgpmime.ErrBadSignature) {
		t.Errorf("unknown signer: signed %v signer %q err %v", o.Signed, o.Signer, o.SignatureErr)
	}
}

func TestOpenPlainMessage(t *testing.T) {
	msg := "From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
	o, err := pgpmime.Open(strings.NewReader(msg), dirKey(t), pgpmime.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if o.Encrypted || string(o.Entity) != msg {
		t.Errorf("plain message: encrypted %v, entity %q", o.Encrypted, o.Entity)
	}
}

func TestOpenLimits(t *testing.T) {
	dir := dirKey(t)
	rk := rcptKey(t, conceicao.Name, conceicao.Address)
	// 4 MiB of zeros compress to a few KB: a small decompression bomb.
	big := pgpmime.Part{Body: bytes.Repeat([]byte("0"), 4<<20)}
	inner, err := pgpmime.BuildInner(testProtected(), []pgpmime.Part{big})
	if err != nil {
		t.Fatal(err)
	}
	signed, err := pgpmime.Sign(inner, dir)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := pgpmime.NewEncrypter(signed, testNow)
	if err != nil {
		t.Fatal(err)
	}
	var asc, msg bytes.Buffer
	if err := enc.Encrypt(&asc, rk.Public(), nil); err != nil {
		t.Fatal(err)
	}
	if err := pgpmime.BuildEncrypted(&msg, testOuter(conceicao), asc.Bytes()); err != nil {
		t.Fatal(err)
	}
	if msg.Len() > 200<<10 {
		t.Fatalf("test message is %d bytes, expected a compressed one", msg.Len())
	}
	if _, err := pgpmime.Open(bytes.NewReader(msg.Bytes()), rk, pgpmime.OpenOptions{Now: testNow}); err != nil {
		t.Fatalf("within the limits: %v", err)
	}
	_, err = pgpmime.Open(bytes.NewReader(msg.Bytes()), rk, pgpmime.OpenOptions{Now: testNow, MaxDecryptedBytes: 1 << 20})
	if err == nil {
		t.Error("decrypted size over MaxDecryptedBytes accepted")
	}
	_, err = pgpmime.Open(bytes.NewReader(msg.Bytes()), rk, pgpmime.OpenOptions{Now: testNow, MaxMessageBytes: int64(msg.Len() - 1)})
	if !errors.Is(err, pgpmime.ErrTooLarge) {
		t.Errorf("message over MaxMessageBytes: %v, want ErrTooLarge", err)
	}
}

// TestHeaderInjection: data cannot add header fields. Values with CR, LF or
// other control characters are refused; everything else is encoded and
// decodes back to itself.
func TestHeaderInjection(t *testing.T) {
	bad := []struct {
		name string
		edit func(p *pgpmime.Protected, parts []pgpmime.Part, o *pgpmime.Outer)
	}{
		{"subject CRLF", func(p *pgpmime.Protected, _ []pgpmime.Part, _ *pgpmime.Outer) {
			p.Subject = "Digest\r\nBcc: x@evil.example"
		}},
		{"subject LF", func(p *pgpmime.Protected, _ []pgpmime.Part, _ *pgpmime.Outer) {
			p.Subject = "Digest\nBcc: x@evil.example"
		}},
		{"subject CR", func(p *pgpmime.Protected, _ []pgpmime.Part, _ *pgpmime.Outer) {
			p.Subject = "Digest\rBcc: x@evil.example"
		}},
		{"subject NUL", func(p *pgpmime.Protected, _ []pgpmime.Part, _ *pgpmime.Outer) { p.Subject = "Digest\x00" }},
		{"subject U+2028", func(p *pgpmime.Protected, _ []pgpmime.Part, _ *pgpmime.Outer) { p.Subject = "Digest\u2028Bcc: x" }},
		{"subject invalid UTF-8", func(p *pgpmime.Protected, _ []pgpmime.Part, _ *pgpmime.Outer) { p.Subject = "Digest \xff" }},
		{"subject too long", func(p *pgpmime.Protected, _ []pgpmime.Part, _ *pgpmime.Outer) { p.Subject = strings.Repeat("x", 1000) }},
		{"from name CRLF", func(p *pgpmime.Protected, _ []pgpmime.Part, _ *pgpmime.Outer) {
			p.From.Name = "Dir\r\nBcc: x@evil.example"
		}},
		{"from address CRLF", func(p *pgpmime.Protected, _ []pgpmime.Part, _ *pgpmime.Outer) {
			p.From.Address = "a@b.example\r\nBcc: x@evil.example"
		}},
		{"from address two @", func(p *pgpmime.Protected, _ []pgpmime.Part, _ *pgpmime.Outer) { p.From.Address = "a@b@c.example" }},
		{"from address quoted", func(p *pgpmime.Protected, _ []pgpmime.Part, _ *pgpmime.Outer) { p.From.Address = `"a b"@c.example` }},
		{"from address with name", func(p *pgpmime.Protected, _ []pgpmime.Part, _ *pgpmime.Outer) { p.From.Address = "X <a@c.example>" }},
		{"from address comma", func(p *pgpmime.Protected, _ []pgpmime.Part, _ *pgpmime.Outer) {
			p.From.Address = "a@c.example,b@d.example"
		}},
		{"to address CRLF", func(p *pgpmime.Protected, _ []pgpmime.Part, _ *pgpmime.Outer) {
			p.ToGroup, p.To = "", []mail.Address{{Address: "x@y.example\r\nBcc: z@evil.example"}}
		}},
		{"group CRLF", func(p *pgpmime.Protected, _ []pgpmime.Part, _ *pgpmime.Outer) { p.ToGroup = "g\r\nBcc: z@evil.example" }},
		{"no To", func(p *pgpmime.Protected, _ []pgpmime.Part, _ *pgpmime.Outer) { p.ToGroup = "" }},
		{"message ID CRLF", func(p *pgpmime.Protected, _ []pgpmime.Part, _ *pgpmime.Outer) { p.MessageID = "a@b\r\nBcc: x" }},
		{"message ID bracket", func(p *pgpmime.Protected, _ []pgpmime.Part, _ *pgpmime.Outer) { p.MessageID = "a>@b" }},
		{"filename CRLF", func(_ *pgpmime.Protected, parts []pgpmime.Part, _ *pgpmime.Outer) {
			parts[1].Filename = "a.vcf\r\nBcc: x"
		}},
		{"filename path", func(_ *pgpmime.Protected, parts []pgpmime.Part, _ *pgpmime.Outer) {
			parts[1].Filename = "../etc/passwd"
		}},
		{"param CRLF", func(_ *pgpmime.Protected, parts []pgpmime.Part, _ *pgpmime.Outer) {
			parts[1].Params = map[string]string{"profile": "x\r\nBcc: y"}
		}},
		{"content type", func(_ *pgpmime.Protected, parts []pgpmime.Part, _ *pgpmime.Outer) {
			parts[1].ContentType = "text/vcard\r\nBcc: x"
		}},
		{"boundary param", func(_ *pgpmime.Protected, parts []pgpmime.Part, _ *pgpmime.Outer) {
			parts[1].Params = map[string]string{"boundary": "x"}
		}},
		{"charset", func(_ *pgpmime.Protected, parts []pgpmime.Part, _ *pgpmime.Outer) {
			parts[0].Params = map[string]string{"charset": "iso-8859-1"}
		}},
		{"outer subject CRLF", func(_ *pgpmime.Protected, _ []pgpmime.Part, o *pgpmime.Outer) {
			o.Subject = "ccTLD\r\nBcc: x@evil.example"
		}},
		{"outer to name CRLF", func(_ *pgpmime.Protected, _ []pgpmime.Part, o *pgpmime.Outer) {
			o.To.Name = "Ivan\r\nBcc: x@evil.example"
		}},
		{"outer to address", func(_ *pgpmime.Protected, _ []pgpmime.Part, o *pgpmime.Outer) {
			o.To.Address = "ivan@cctld.ru>, x@evil.example"
		}},
		{"outer message ID", func(_ *pgpmime.Protected, _ []pgpmime.Part, o *pgpmime.Outer) { o.MessageID = "" }},
		{"extra value CRLF", func(_ *pgpmime.Protected, _ []pgpmime.Part, o *pgpmime.Outer) {
			o.Extra = []pgpmime.Field{{Key: "List-Id", Value: "x\r\nBcc: y@evil.example"}}
		}},
		{"extra key CRLF", func(_ *pgpmime.Protected, _ []pgpmime.Part, o *pgpmime.Outer) {
			o.Extra = []pgpmime.Field{{Key: "X-A\r\nBcc", Value: "y"}}
		}},
		{"extra Bcc", func(_ *pgpmime.Protected, _ []pgpmime.Part, o *pgpmime.Outer) {
			o.Extra = []pgpmime.Field{{Key: "bcc", Value: "y@evil.example"}}
		}},
		{"extra Content-Type", func(_ *pgpmime.Protected, _ []pgpmime.Part, o *pgpmime.Outer) {
			o.Extra = []pgpmime.Field{{Key: "Content-Type", Value: "text/plain"}}
		}},
		{"extra non-ASCII", func(_ *pgpmime.Protected, _ []pgpmime.Part, o *pgpmime.Outer) {
			o.Extra = []pgpmime.Field{{Key: "X-Note", Value: "Conceição"}}
		}},
	}
	armored := []byte("-----BEGIN PGP MESSAGE-----\n\nAAAA\n=AAAA\n-----END PGP MESSAGE-----\n")
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			p, parts, o := testProtected(), testParts(), testOuter(ivan)
			tc.edit(&p, parts, &o)
			inner, err1 := pgpmime.BuildInner(p, parts)
			var out bytes.Buffer
			err2 := pgpmime.BuildEncrypted(&out, o, armored)
			if err1 == nil && err2 == nil {
				t.Fatalf("accepted; inner:\n%.400s\nouter:\n%.400s", inner, out.Bytes())
			}
			for _, err := range []error{err1, err2} {
				if err != nil && !errors.Is(err, pgpmime.ErrHeader) && !errors.Is(err, pgpmime.ErrEntity) {
					t.Errorf("error %v does not wrap ErrHeader", err)
				}
			}
			if err2 != nil && out.Len() != 0 {
				t.Errorf("BuildEncrypted wrote %d bytes before failing", out.Len())
			}
		})
	}

	// Tricky but valid text is encoded and decodes back, with no new field.
	p := testProtected()
	p.Subject = "Bcc: x@evil.example; To: y@evil.example <z@evil.example>, \"quoted\" =?utf-8?q?x?= Иван"
	p.From.Name = "Bcc: x@evil.example, \"ivan\" <y@evil.example>"
	p.ToGroup = ""
	p.To = []mail.Address{{Name: "To: a@evil.example;", Address: "a@b.example"}, fatima}
	inner, err := pgpmime.BuildInner(p, testParts()[:1])
	if err != nil {
		t.Fatal(err)
	}
	h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(inner))).ReadMIMEHeader()
	if err != nil {
		t.Fatal(err)
	}
	var keysSeen []string
	for k := range h {
		keysSeen = append(keysSeen, k)
	}
	for _, k := range keysSeen {
		switch k {
		case "From", "To", "Subject", "Date", "Message-Id", "Mime-Version", "Content-Type":
		default:
			t.Errorf("unexpected header field %q in\n%s", k, inner)
		}
	}
	if len(h["To"]) != 1 || len(h["From"]) != 1 {
		t.Errorf("From %q To %q", h["From"], h["To"])
	}
	in, err := pgpmime.ParseInner(inner)
	if err != nil {
		t.Fatal(err)
	}
	got := in.Protected
	got.Date = p.Date
	// Subjects with "=?" are left as is by RFC 2047 encoders, so a reader
	// decodes that word; everything else must come back.
	got.Subject, p.Subject = strings.Replace(got.Subject, "x", "=?utf-8?q?x?=", 1), strings.Replace(p.Subject, "=?utf-8?q?x?=", "=?utf-8?q?x?=", 1)
	if !reflect.DeepEqual(got.From, p.From) || !reflect.DeepEqual(got.To, p.To) {
		t.Errorf("addresses:\n got %q %q\nwant %q %q", got.From, got.To, p.From, p.To)
	}
}

// TestQuotedPrintableAlways: text parts are quoted-printable whatever
// their script (gpg -d shows them readable), lines stay within 76
// octets, none starts with "From " or ".", and the standard library's
// reader gives the body back.
func TestQuotedPrintableAlways(t *testing.T) {
	for _, tc := range []string{
		"hello\nworld\n",
		"hello\nFrom here\n",
		strings.Repeat("Иван Петров ", 50),
		"João Conceição, فاطمة العتيبي, 王伟\n",
		// A soft line break would start a line with "From " or ".".
		strings.Repeat("a", 75) + "From x\n",
		strings.Repeat("a", 74) + "From x\n",
		strings.Repeat("a", 60) + "From x\n",
		strings.Repeat("a", 75) + ".x\n.\n..\n",
		"trailing space \ntrailing tab\t\n\n= sign =3D\n",
		strings.Repeat("é", 200) + "\n" + strings.Repeat(" ", 100) + "x\n",
		"no final newline",
	} {
		inner, err := pgpmime.BuildInner(testProtected(), []pgpmime.Part{{Body: []byte(tc)},
			{ContentType: "text/vcard", Filename: "a.vcf", Body: []byte(tc)}})
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(inner, []byte("Content-Transfer-Encoding: quoted-printable\r\n")); n != 2 ||
			bytes.Contains(inner, []byte("base64")) {
			t.Errorf("%.30q: want both parts quoted-printable in\n%s", tc, inner)
		}
		for line := range strings.SplitSeq(string(inner), "\r\n") {
			if strings.HasPrefix(line, "From ") || line == "." || strings.HasPrefix(line, ".") {
				t.Errorf("%.30q: line starts with From or a dot: %q", tc, line)
			}
			if len(line) > 76 {
				t.Errorf("%.30q: line of %d octets: %q", tc, len(line), line)
			}
			if strings.HasSuffix(line, " ") || strings.HasSuffix(line, "\t") {
				t.Errorf("%.30q: trailing white space: %q", tc, line)
			}
		}
		in, err := pgpmime.ParseInner(inner)
		if err != nil {
			t.Fatal(err)
		}
		want := strings.ReplaceAll(tc, "\n", "\r\n")
		for i, p := range in.Parts {
			if string(p.Body) != want {
				t.Errorf("part %d: body %q, want %q", i, p.Body, want)
			}
		}
		// The standard library's decoder agrees.
		i := bytes.Index(inner, []byte("quoted-printable\r\n\r\n"))
		j := bytes.Index(inner[i:], []byte("\r\n--"))
		got, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(inner[i+len("quoted-printable\r\n\r\n") : i+j])))
		if err != nil || string(got) != want {
			t.Errorf("%.30q: mime/quotedprintable reads %q (%v), want %q", tc, got, err, want)
		}
	}
}

// TestQuotedPrintableTextLike: a part that reads as text (JSON, an
// armored key, LF line ends and all) is quoted-printable and comes back
// byte for byte, so a detached signature over it still verifies; binary
// stays base64.
func TestQuotedPrintableTextLike(t *testing.T) {
	json := "{\n  \"name\": \"João\",\n  \"x\": \"" + strings.Repeat("=", 100) + "\"\n}\n"
	key := "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxjMEZ" + strings.Repeat("A", 59) + "\n=ab+c\n-----END PGP PUBLIC KEY BLOCK-----\n"
	bin := "\x00\x01\xffFrom \r\n"
	parts := []pgpmime.Part{{Body: []byte("text\n")},
		{ContentType: "application/json", Filename: "directory.json", Body: []byte(json)},
		{ContentType: "application/pgp-keys", Filename: "keys.asc", Body: []byte(key)},
		{ContentType: "application/octet-stream", Filename: "x.bin", Body: []byte(bin)}}
	inner, err := pgpmime.BuildInner(testProtected(), parts)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(inner, []byte("Content-Transfer-Encoding: quoted-printable\r\n")); n != 3 {
		t.Errorf("%d quoted-printable parts, want 3:\n%s", n, inner)
	}
	if n := bytes.Count(inner, []byte("Content-Transfer-Encoding: base64\r\n")); n != 1 {
		t.Errorf("%d base64 parts, want 1:\n%s", n, inner)
	}
	if !bytes.Contains(inner, []byte("\r\n-----BEGIN PGP PUBLIC KEY BLOCK-----=0A=\r\n=0A=\r\nxjMEZ")) {
		t.Errorf("the armored key does not read as itself:\n%s", inner)
	}
	in, err := pgpmime.ParseInner(inner)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range in.Parts {
		if i > 0 && !bytes.Equal(p.Body, parts[i].Body) {
			t.Errorf("part %d: %q, want %q", i, p.Body, parts[i].Body)
		}
	}
}

// FuzzQuotedPrintable: whatever the bytes, a part decodes to them again
// (go-message's reader and the standard library's), and no encoded line
// is longer than 76 octets or starts with "From " or ".".
func FuzzQuotedPrintable(f *testing.F) {
	for _, s := range []string{"a\n", "From x\r\n.\r\n", strings.Repeat("é ", 80) + " \r\n\t", "\n\n\r\r\n=", "{\"a\": 1}\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) == 0 {
			return
		}
		inner, err := pgpmime.BuildInner(testProtected(), []pgpmime.Part{{Body: []byte("x")},
			{ContentType: "application/json", Filename: "a.json", Body: body}})
		if err != nil {
			t.Fatal(err)
		}
		in, err := pgpmime.ParseInner(inner)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(in.Parts[1].Body, body) {
			t.Fatalf("decoded %q, want %q", in.Parts[1].Body, body)
		}
		i := bytes.Index(inner, []byte("a.json"))
		for line := range strings.SplitSeq(string(inner[i:]), "\r\n") {
			if len(line) > 76 || strings.HasPrefix(line, "From ") || strings.HasPrefix(line, ".") {
				t.Fatalf("line %q", line)
			}
		}
		if !bytes.Contains(inner, []byte("a.json\r\nContent-Transfer-Encoding: quoted-printable\r\n")) {
			return
		}
		j := bytes.Index(inner[i:], []byte("\r\n\r\n")) + i + 4
		k := bytes.LastIndex(inner, []byte("\r\n--"))
		got, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(inner[j:k])))
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("mime/quotedprintable reads %q (%v), want %q", got, err, body)
		}
	})
}

func TestAttachmentNames(t *testing.T) {
	inner, err := pgpmime.BuildInner(testProtected(), testParts())
	if err != nil {
		t.Fatal(err)
	}
	// RFC 2231 for the non-ASCII name, as the standard library reads it.
	inner = bytes.ReplaceAll(inner, []byte("\r\n "), []byte(" ")) // unfold
	i := bytes.Index(inner, []byte("Content-Disposition: attachment; filename*="))
	if i < 0 {
		t.Fatalf("no RFC 2231 filename in\n%s", inner)
	}
	line := inner[i+len("Content-Disposition: "):]
	line = line[:bytes.Index(line, []byte("\r\n"))]
	_, params, err := mime.ParseMediaType(string(line))
	if err != nil || params["filename"] != "relatório de mudanças – Conceição.bin" {
		t.Errorf("filename %q (%v) from %q", params["filename"], err, line)
	}
}

// TestArmorMatchesGoCrypto: the table-driven armor writes the same text as
// go-crypto's armor.Encode (with its CRC-24; CRLF instead of LF), for
// lengths that end with and without '=' padding.
func TestArmorMatchesGoCrypto(t *testing.T) {
	dir := dirKey(t)
	for n := 0; n < 200; n += 7 {
		inner, err := pgpmime.BuildInner(testProtected(), []pgpmime.Part{{Body: bytes.Repeat([]byte("x"), n)}})
		if err != nil {
			t.Fatal(err)
		}
		signed, err := pgpmime.Sign(inner, dir)
		if err != nil {
			t.Fatal(err)
		}
		enc, err := pgpmime.NewEncrypter(signed, testNow)
		if err != nil {
			t.Fatal(err)
		}
		var asc bytes.Buffer
		if err := enc.Encrypt(&asc, dir.Public(), nil); err != nil {
			t.Fatal(err)
		}
		blk, err := armor.Decode(bytes.NewReader(asc.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		bin, err := io.ReadAll(blk.Body)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		w, _ := armor.Encode(&want, "PGP MESSAGE", nil)
		w.Write(bin)
		w.Close()
		want.WriteByte('\n')
		if wantCRLF := strings.ReplaceAll(want.String(), "\n", "\r\n"); asc.String() != wantCRLF {
			t.Fatalf("n=%d: armor differs\n got %s\nwant %s", n, asc.Bytes(), want.Bytes())
		}
	}
}

func TestEncryptConcurrent(t *testing.T) {
	dir := dirKey(t)
	signed, enc := testEncrypter(t, dir)
	rks := []*keys.Secret{rcptKey(t, "A", "a@a.example"), rcptKey(t, "B", "b@b.example")}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() { // not wg.Go: that is Go 1.25, and go.mod says 1.24
			defer wg.Done()
			rk := rks[i%2]
			var asc, msg bytes.Buffer
			if err := enc.Encrypt(&asc, rk.Public(), nil); err != nil {
				errs <- err
				return
			}
			if err := pgpmime.BuildEncrypted(&msg, testOuter(ivan), asc.Bytes()); err != nil {
				errs <- err
				return
			}
			o, err := pgpmime.Open(&msg, rk, pgpmime.OpenOptions{Now: testNow})
			if err == nil && !bytes.Equal(o.Entity, signed.Bytes()) {
				err = errors.New("entity differs")
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestEncryptRefusesUnusableKeys(t *testing.T) {
	inner, _ := pgpmime.BuildInner(testProtected(), testParts()[:1])
	signed, err := pgpmime.Sign(inner, dirKey(t))
	if err != nil {
		t.Fatal(err)
	}
	// Keys made in 2025 (keystest.SecretTime) do not exist yet in 2020.
	enc, err := pgpmime.NewEncrypter(signed, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	var asc bytes.Buffer
	err = enc.Encrypt(&asc, rcptKey(t, "A", "a@a.example").Public(), nil)
	if !errors.Is(err, keys.ErrNoEncryptionKey) || asc.Len() != 0 {
		t.Errorf("key not yet valid: %v (%d bytes written), want ErrNoEncryptionKey", err, asc.Len())
	}
}

func TestSignRefusesBadEntities(t *testing.T) {
	dir := dirKey(t)
	for _, e := range []string{
		"Content-Type: text/plain\n\nLF only\n",
		"Content-Type: text/plain\r\n\r\nbare\rCR\r\n",
		"no header at all",
		"Subject: x\r\n\r\nno content type\r\n",
	} {
		if _, err := pgpmime.Sign([]byte(e), dir); !errors.Is(err, pgpmime.ErrEntity) {
			t.Errorf("Sign(%q): %v, want ErrEntity", e, err)
		}
	}
}

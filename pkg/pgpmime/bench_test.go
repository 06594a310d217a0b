package pgpmime_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// benchParts is a digest-sized entity: about 57 KB of text (250 ccTLDs ×
// 3 contacts) and 100 KB of attachments (vCards, JSON, armored keys).
func benchParts(b *testing.B) []pgpmime.Part {
	r := rand.New(rand.NewChaCha8([32]byte{1}))
	var text, vcf, json strings.Builder
	text.WriteString("ccTLD security contact directory, serial 42\n\n")
	json.WriteString(`{"serial":42,"contacts":[`)
	for i := 0; text.Len() < 57_000; i++ {
		tld := fmt.Sprintf("%c%c", 'a'+i/26%26, 'a'+i%26)
		fmt.Fprintf(&text, ".%s  Registry %s  Contact %d Conceição  +%d %09d  24x7  %X\n",
			tld, strings.ToUpper(tld), i, 1+r.IntN(998), r.IntN(1e9), r.Uint64())
		if vcf.Len() < 40_000 {
			fmt.Fprintf(&vcf, "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Contact %d\r\nEMAIL:c%d@nic.%s\r\nTEL:+%d\r\nEND:VCARD\r\n", i, i, tld, r.Uint32())
		}
		if json.Len() < 38_000 {
			fmt.Fprintf(&json, `{"tld":%q,"name":"Contact %d","phone":"+%d"},`, tld, i, r.Uint32())
		}
	}
	json.WriteString("]}\n")
	keyBytes := make([]byte, 16_000)
	for i := range keyBytes {
		keyBytes[i] = byte(r.Uint32())
	}
	asc := "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n" + base64.StdEncoding.EncodeToString(keyBytes) + "\n-----END PGP PUBLIC KEY BLOCK-----\n"
	parts := []pgpmime.Part{
		{Body: []byte(text.String())},
		{ContentType: "text/vcard", Filename: "directory.vcf", Body: []byte(vcf.String())},
		{ContentType: "application/json", Filename: "directory.json", Body: []byte(json.String())},
		{ContentType: "application/pgp-keys", Filename: "directory-keys.asc", Body: []byte(asc)},
	}
	total := 0
	for _, p := range parts[1:] {
		total += len(p.Body)
	}
	b.Logf("text %d bytes, attachments %d bytes", len(parts[0].Body), total)
	return parts
}

func benchSigned(b *testing.B) *pgpmime.Signed {
	inner, err := pgpmime.BuildInner(testProtected(), benchParts(b))
	if err != nil {
		b.Fatal(err)
	}
	signed, err := pgpmime.Sign(inner, dirKey(b))
	if err != nil {
		b.Fatal(err)
	}
	return signed
}

func benchRecipients(b *testing.B, n int) []*keys.Public {
	ps := make([]*keys.Public, n)
	for i := range ps {
		s := rcptKey(b, fmt.Sprintf("Recipient %d", i), fmt.Sprintf("r%d@nic.example", i))
		ps[i] = s.Public()
		if err := ps[i].Check(testNow); err != nil {
			b.Fatal(err)
		}
	}
	return ps
}

// BenchmarkEncryptPerRecipient measures the per-recipient work of a digest
// (Ed25519/Cv25519 recipients): Encrypt (session key, PKESK, SEIPDv1 over
// the precompressed entity, armor) plus BuildEncrypted.
func BenchmarkEncryptPerRecipient(b *testing.B) {
	signed := benchSigned(b)
	enc, err := pgpmime.NewEncrypter(signed, testNow)
	if err != nil {
		b.Fatal(err)
	}
	rcpts := benchRecipients(b, 64)
	var asc bytes.Buffer
	if err := enc.Encrypt(&asc, rcpts[0], nil); err != nil {
		b.Fatal(err)
	}
	b.Logf("signed entity %d bytes, armored message %d bytes", len(signed.Bytes()), asc.Len())
	outer := testOuter(ivan)

	b.Run("serial", func(b *testing.B) {
		var asc bytes.Buffer
		i := 0
		for b.Loop() {
			asc.Reset()
			if err := enc.Encrypt(&asc, rcpts[i%len(rcpts)], nil); err != nil {
				b.Fatal(err)
			}
			if err := pgpmime.BuildEncrypted(io.Discard, outer, asc.Bytes()); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/recipient")
	})
	b.Run("encrypt-only", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if err := enc.Encrypt(io.Discard, rcpts[i%len(rcpts)], nil); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/recipient")
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			var asc bytes.Buffer
			i := 0
			for pb.Next() {
				asc.Reset()
				if err := enc.Encrypt(&asc, rcpts[i%len(rcpts)], nil); err != nil {
					b.Fatal(err)
				}
				if err := pgpmime.BuildEncrypted(io.Discard, outer, asc.Bytes()); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/recipient")
	})
}

// BenchmarkSealedCopy measures what a digest or list post pays per
// recipient once the entity is sealed: the PKESK (X25519) and the copy's
// headers, framing and armor checksum. Only the head and tail are new
// bytes; the shared part is the same for every copy.
func BenchmarkSealedCopy(b *testing.B) {
	signed := benchSigned(b)
	enc, err := pgpmime.NewEncrypter(signed, testNow)
	if err != nil {
		b.Fatal(err)
	}
	sealed := enc.Seal(nil)
	pubs := benchRecipients(b, 64)
	rcpts := make([]*pgpmime.Recipient, len(pubs))
	for i, p := range pubs {
		if rcpts[i], err = pgpmime.NewRecipient(p, testNow); err != nil {
			b.Fatal(err)
		}
	}
	outer := testOuter(ivan)
	c, err := sealed.Copy(rcpts[0], outer, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("head %d bytes, shared %d bytes, tail %d bytes", len(c.Head), len(sealed.Shared(c.Shared)), len(c.Tail))
	b.Run("serial", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := sealed.Copy(rcpts[i%len(rcpts)], outer, nil); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/recipient")
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := sealed.Copy(rcpts[i%len(rcpts)], outer, nil); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/recipient")
	})
}

// BenchmarkNewEncrypter is the once-per-digest compression.
func BenchmarkNewEncrypter(b *testing.B) {
	signed := benchSigned(b)
	for b.Loop() {
		if _, err := pgpmime.NewEncrypter(signed, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSign is the once-per-digest signature (Ed25519 directory key)
// over the digest-sized inner entity, MIME framing included.
func BenchmarkSign(b *testing.B) {
	inner, err := pgpmime.BuildInner(testProtected(), benchParts(b))
	if err != nil {
		b.Fatal(err)
	}
	dir := dirKey(b)
	for b.Loop() {
		if _, err := pgpmime.Sign(inner, dir); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuildInner is the once-per-digest MIME construction.
func BenchmarkBuildInner(b *testing.B) {
	parts := benchParts(b)
	for b.Loop() {
		if _, err := pgpmime.BuildInner(testProtected(), parts); err != nil {
			b.Fatal(err)
		}
	}
}

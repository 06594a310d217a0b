package inbound

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
)

// The test directory: fixed keys, a fixed clock. The corpus is generated
// and checked against it.
var corpusNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

const (
	dirAddr  = "directory@ccdir.test"
	listAddr = "list@ccdir.test"
)

// member is a test member: a go-crypto entity with its private key.
type member struct {
	name, email string
	entity      *openpgp.Entity
}

func (m *member) pub(t testing.TB) *keys.Public {
	t.Helper()
	var b bytes.Buffer
	if err := m.entity.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	p, err := keys.ParsePublicOne(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// seeded returns deterministic randomness for label.
func seeded(label string) io.Reader {
	return rand.NewChaCha8(sha256.Sum256([]byte("ccdir inbound test\x00" + label)))
}

// newMember makes an Ed25519/Cv25519 key, the same on every run.
func newMember(t testing.TB, name, email string, created time.Time, lifetime time.Duration) *member {
	t.Helper()
	cfg := &packet.Config{
		Rand:            seeded("key " + email),
		Time:            func() time.Time { return created },
		Algorithm:       packet.PubKeyAlgoEdDSA,
		Curve:           packet.Curve25519,
		DefaultHash:     crypto.SHA256,
		KeyLifetimeSecs: uint32(lifetime / time.Second),
	}
	e, err := openpgp.NewEntity(name, "", email, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &member{name: name, email: email, entity: e}
}

type world struct {
	t       testing.TB
	dir     *keys.Secret
	store   *directory.Store
	p       *Pipeline
	ana     *member // security pt
	bruno   *member // admin pt
	eva     *member // security de, key expired a day before corpusNow
	li      *member // security cn, an inactive member
	mallory *member // not registered
}

var keyCreated = time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)

// newWorld builds the test directory in a temporary store.
func newWorld(t testing.TB) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{t: t}
	w.dir = keystest.NewSecret(t, "ccTLD Test Directory", dirAddr)
	w.ana = newMember(t, "Ana Sousa", "ana@dns.pt", keyCreated, 0)
	w.bruno = newMember(t, "Bruno Costa", "bruno@dns.pt", keyCreated, 0)
	evaCreated := corpusNow.Add(-30 * 24 * time.Hour)
	w.eva = newMember(t, "Eva Schmidt", "eva@nic.de", evaCreated, 29*24*time.Hour)
	w.li = newMember(t, "Li Wei", "li@cnnic.cn", keyCreated, 0)
	w.mallory = newMember(t, "Mallory", "mallory@evil.example", keyCreated, 0)

	pubArmored, err := w.dir.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	info := directory.Info{Name: "ccTLD Test Directory", Address: dirAddr, ListAddress: listAddr,
		KeyFingerprint: w.dir.Fingerprint(), PublicKey: string(pubArmored)}
	storeNow := func() time.Time { return corpusNow.Add(-7 * 24 * time.Hour) }
	w.store, err = directory.Create(ctx, filepath.Join(t.TempDir(), "ccdir.db"), info,
		directory.Options{Signer: w.dir, Now: storeNow, MaxSecurityContacts: 10, Migrations: Migrations})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.store.Close() })
	_, err = w.store.Update(ctx, directory.Operator, func(tx *directory.Tx) error {
		for _, m := range []directory.Member{
			{TLD: "pt", Org: "Associacao DNS.PT"},
			{TLD: "de", Org: "DENIC eG"},
			{TLD: "cn", Org: "CNNIC", Status: directory.StatusInactive},
		} {
			if _, err := tx.AddMember(m); err != nil {
				return err
			}
		}
		for _, c := range []struct {
			m         *member
			tld, role string
			phone     string
		}{
			{w.ana, "pt", directory.RoleSecurity, "+351211234567"},
			{w.bruno, "pt", directory.RoleAdmin, "+351217654321"},
			{w.eva, "de", directory.RoleSecurity, "+4969123456789"},
			{w.li, "cn", directory.RoleSecurity, "+861058813000"},
		} {
			if _, err := tx.AddContact(directory.Contact{
				Email: c.m.email, Name: c.m.name,
				Phones: []directory.Phone{{Number: c.phone}},
				Roles:  []directory.Role{{TLD: c.tld, Role: c.role}},
				Key:    registeredKey(t, c.m.pub(t)),
			}); err != nil {
				return fmt.Errorf("%s: %w", c.m.email, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	w.p = &Pipeline{Store: w.store, Secret: w.dir, Config: Config{Addresses: []string{dirAddr, listAddr}},
		Now: func() time.Time { return corpusNow }}
	return w
}

func registeredKey(t testing.TB, p *keys.Public) *directory.Key {
	t.Helper()
	a, err := p.Armored()
	if err != nil {
		t.Fatal(err)
	}
	k := &directory.Key{Fingerprint: p.Fingerprint, Algorithm: p.Algorithm,
		Created: p.Created.UTC().Format(time.RFC3339), Armored: string(a)}
	if !p.Expires.IsZero() {
		k.Expires = p.Expires.UTC().Format(time.RFC3339)
	}
	return k
}

// signCfg is a deterministic signing configuration.
func signCfg(label string, at time.Time) *packet.Config {
	return &packet.Config{
		Rand:          seeded(label),
		Time:          func() time.Time { return at },
		DefaultHash:   crypto.SHA256,
		DefaultCipher: packet.CipherAES256,
	}
}

// clearsigned returns text clear-signed by m at at.
func clearsigned(t testing.TB, m *member, text string, at time.Time, label string) string {
	t.Helper()
	var b bytes.Buffer
	w, err := clearsign.Encode(&b, m.entity.PrivateKey, signCfg(label, at))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, text)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return crlf(b.String())
}

// detached returns an armored detached signature by m over data.
func detached(t testing.TB, m *member, data []byte, at time.Time, label string) string {
	t.Helper()
	var b bytes.Buffer
	aw, err := armor.Encode(&b, openpgp.SignatureType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := openpgp.DetachSign(aw, []*openpgp.Entity{m.entity}, bytes.NewReader(data), signCfg(label, at)); err != nil {
		t.Fatal(err)
	}
	aw.Close()
	return crlf(b.String()) + "\r\n"
}

// encrypted returns an armored OpenPGP message with data, encrypted to
// the directory key and, unless signer is nil, signed (RFC 3156 §6.2).
func (w *world) encrypted(signer *member, data []byte, at time.Time, label string) string {
	w.t.Helper()
	var b bytes.Buffer
	aw, err := armor.Encode(&b, "PGP MESSAGE", nil)
	if err != nil {
		w.t.Fatal(err)
	}
	params := &openpgp.EncryptParams{Config: signCfg(label, at), EncryptionTime: &at}
	if signer != nil {
		params.Signers = []*openpgp.Entity{signer.entity}
	}
	pt, err := openpgp.EncryptWithParams(aw, []*openpgp.Entity{w.dir.Public().Entity()}, nil, params)
	if err != nil {
		w.t.Fatal(err)
	}
	pt.Write(data)
	if err := pt.Close(); err != nil {
		w.t.Fatal(err)
	}
	aw.Close()
	return crlf(b.String()) + "\r\n"
}

// crlf turns LF line endings into CRLF.
func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

// headers returns the usual outer header lines for a message from m.
func headers(from, id string, extra ...string) string {
	h := []string{
		"Return-Path: <" + from + ">",
		"From: <" + from + ">",
		"To: <" + dirAddr + ">",
		"Subject: commands",
		"Date: Sun, 01 Jun 2025 11:59:00 +0000",
		"Message-ID: <" + id + "@corpus.test>",
		"MIME-Version: 1.0",
	}
	h = append(h, extra...)
	return strings.Join(h, "\r\n") + "\r\n"
}

// textMail is a text/plain message with body.
func textMail(hdr, body string) []byte {
	return []byte(hdr + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" + crlf(body))
}

// signedMail wraps inner (a CRLF MIME entity) and its armored signature
// into multipart/signed exactly as RFC 3156 §5 describes.
func signedMail(hdr string, inner []byte, sig string) []byte {
	const b = "sig-boundary-7f3a"
	return []byte(hdr +
		`Content-Type: multipart/signed; micalg=pgp-sha256; protocol="application/pgp-signature"; boundary="` + b + `"` + "\r\n\r\n" +
		"This is an OpenPGP/MIME signed message (RFC 4880 and 3156)\r\n" +
		"--" + b + "\r\n" + string(inner) + "\r\n" +
		"--" + b + "\r\n" +
		"Content-Type: application/pgp-signature; name=\"signature.asc\"\r\n" +
		"Content-Description: OpenPGP digital signature\r\n" +
		"Content-Disposition: attachment; filename=\"signature.asc\"\r\n\r\n" +
		sig + "\r\n--" + b + "--\r\n")
}

// encryptedMail wraps an armored OpenPGP message into multipart/encrypted
// (RFC 3156 §4).
func encryptedMail(hdr, armored string) []byte {
	const b = "enc-boundary-91c2"
	return []byte(hdr +
		`Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="` + b + `"` + "\r\n\r\n" +
		"This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n" +
		"--" + b + "\r\n" +
		"Content-Type: application/pgp-encrypted\r\nContent-Description: PGP/MIME version identification\r\n\r\nVersion: 1\r\n\r\n" +
		"--" + b + "\r\n" +
		"Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\n" +
		"Content-Description: OpenPGP encrypted message\r\n" +
		"Content-Disposition: inline; filename=\"encrypted.asc\"\r\n\r\n" +
		armored + "\r\n--" + b + "--\r\n")
}

// mangledMail is what Exchange makes of multipart/encrypted: a
// multipart/mixed with an empty text part, the version part and the
// encrypted part as attachments (base64).
func mangledMail(hdr, armored string) []byte {
	const b = "_003_exchange_mangled_"
	return []byte(hdr +
		`Content-Type: multipart/mixed; boundary="` + b + `"` + "\r\n\r\n" +
		"--" + b + "\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n\r\n" +
		"--" + b + "\r\n" +
		"Content-Type: application/pgp-encrypted; name=\"PGPMIME version identification\"\r\n" +
		"Content-Disposition: attachment; filename=\"PGPMIME version identification\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + b64("Version: 1\r\n") + "\r\n" +
		"--" + b + "\r\n" +
		"Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\n" +
		"Content-Disposition: attachment; filename=\"encrypted.asc\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + b64(armored) + "\r\n" +
		"--" + b + "--\r\n")
}

// textEntity is a signed inner entity: text/plain with optional
// protected headers.
func textEntity(body string, protected ...string) []byte {
	var h string
	for _, p := range protected {
		h += p + "\r\n"
	}
	return []byte(h + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" + crlf(body))
}

// mixedEntity is a signed multipart/mixed inner entity: the text and a
// key as attachment, with protected headers.
func mixedEntity(body, keyName, key string, protected ...string) []byte {
	const b = "inner-mixed-5d1e"
	var h string
	for _, p := range protected {
		h += p + "\r\n"
	}
	return []byte(h + `Content-Type: multipart/mixed; boundary="` + b + `"; protected-headers="v1"` + "\r\n\r\n" +
		"--" + b + "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + crlf(body) + "\r\n" +
		"--" + b + "\r\nContent-Type: application/pgp-keys\r\nContent-Disposition: attachment; filename=\"" + keyName + "\"\r\n\r\n" + crlf(key) + "\r\n" +
		"--" + b + "--\r\n")
}

func b64(s string) string {
	var out bytes.Buffer
	enc := []byte(base64Std(s))
	for len(enc) > 76 {
		out.Write(enc[:76])
		out.WriteString("\r\n")
		enc = enc[76:]
	}
	out.Write(enc)
	return out.String()
}

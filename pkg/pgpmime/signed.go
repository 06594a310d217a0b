package pgpmime

import (
	"bufio"
	"bytes"
	"crypto"
	"fmt"
	"io"
	"mime"
	"strings"
	"time"

	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"github.com/ccdir/ccdir/keys"
)

// MaxEntityBytes caps an entity given to Sign, SignEncrypt, Verify or
// ParseInner.
const MaxEntityBytes = 64 << 20

// Signed is a multipart/signed entity (RFC 3156 §5): the inner entity and
// a detached signature over it. It is made once and then encrypted for
// many recipients. It is immutable.
type Signed struct {
	entity []byte
	micalg string
}

// Bytes returns the entity, its own Content-Type header included, with
// CRLF line endings. The caller must not modify it.
func (s *Signed) Bytes() []byte { return s.entity }

// MicAlg returns the micalg parameter, e.g. "pgp-sha256".
func (s *Signed) MicAlg() string { return s.micalg }

const signedPreamble = "This is an OpenPGP/MIME signed message (RFC 4880 and 3156)\r\n"

// Sign signs inner (a MIME entity with CRLF line endings, as BuildInner
// returns) with a binary detached signature (type 0x00, SHA-256, armored
// with a CRC-24 line) and returns the multipart/signed entity. The
// signature covers inner exactly as it is sent; micalg is taken from the
// signature. The boundary depends on inner only.
func Sign(inner []byte, signer *keys.Secret) (*Signed, error) {
	if err := checkEntity(inner); err != nil {
		return nil, err
	}
	var asc bytes.Buffer
	if err := signer.ArmoredDetachSign(&asc, bytes.NewReader(inner)); err != nil {
		return nil, err
	}
	sig, err := readSignature(asc.Bytes())
	if err != nil {
		return nil, fmt.Errorf("own signature: %w", err)
	}
	micalg, err := micAlg(sig.Hash)
	if err != nil {
		return nil, err
	}

	bnd := boundary("signed", inner)
	if bytes.Contains(inner, []byte("--"+bnd)) {
		return nil, fmt.Errorf("%w: entity contains the MIME boundary", ErrEntity)
	}
	ct, err := contentType("multipart/signed", map[string]string{
		"boundary": bnd,
		"micalg":   micalg,
		"protocol": "application/pgp-signature",
	})
	if err != nil {
		return nil, err
	}
	var hf fields
	hf.add("Content-Type", ct)
	var sf fields
	sf.add("Content-Type", `application/pgp-signature; name="signature.asc"`)
	sf.add("Content-Description", "OpenPGP digital signature")
	sf.add("Content-Disposition", `attachment; filename="signature.asc"`)

	var out bytes.Buffer
	out.Grow(len(inner) + asc.Len() + 1024)
	if err := hf.write(&out); err != nil {
		return nil, err
	}
	out.WriteString(signedPreamble)
	out.WriteString("--" + bnd + "\r\n")
	out.Write(inner)
	out.WriteString("\r\n--" + bnd + "\r\n")
	if err := sf.write(&out); err != nil {
		return nil, err
	}
	out.Write(crlf(asc.Bytes()))
	out.WriteString("\r\n--" + bnd + "--\r\n")
	return &Signed{entity: out.Bytes(), micalg: micalg}, nil
}

// checkEntity requires a MIME entity with CRLF line endings only and a
// readable header.
func checkEntity(e []byte) error {
	if len(e) > MaxEntityBytes {
		return fmt.Errorf("%w: entity of %d bytes, at most %d allowed", ErrTooLarge, len(e), MaxEntityBytes)
	}
	for i, c := range e {
		if c == '\n' && (i == 0 || e[i-1] != '\r') || c == '\r' && (i+1 == len(e) || e[i+1] != '\n') {
			return fmt.Errorf("%w: bare CR or LF at byte %d (line endings must be CRLF)", ErrEntity, i)
		}
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(e)))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrEntity, err)
	}
	if !h.Has("Content-Type") {
		return fmt.Errorf("%w: no Content-Type", ErrEntity)
	}
	return nil
}

func micAlg(h crypto.Hash) (string, error) {
	switch h {
	case crypto.SHA256:
		return "pgp-sha256", nil
	case crypto.SHA384:
		return "pgp-sha384", nil
	case crypto.SHA512:
		return "pgp-sha512", nil
	case crypto.SHA224:
		return "pgp-sha224", nil
	}
	return "", fmt.Errorf("signature hash %v has no micalg name", h)
}

// readSignature reads one signature packet, armored or binary.
func readSignature(b []byte) (*packet.Signature, error) {
	var r io.Reader = bytes.NewReader(b)
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) > 0 && t[0]&0x80 == 0 {
		blk, err := armor.Decode(bytes.NewReader(t))
		if err != nil {
			return nil, err
		}
		if blk.Type != openpgp.SignatureType {
			return nil, fmt.Errorf("armor block is %q, not a signature", blk.Type)
		}
		r = blk.Body
	}
	p, err := packet.Read(r)
	if err != nil {
		return nil, err
	}
	sig, ok := p.(*packet.Signature)
	if !ok {
		return nil, fmt.Errorf("not a signature packet")
	}
	return sig, nil
}

// Verified is the result of Verify.
type Verified struct {
	// Fingerprint is the signer's primary key fingerprint (as in
	// keys.Public.Fingerprint).
	Fingerprint string
	// SignedAt is the signature's creation time (chosen by the signer).
	SignedAt time.Time
	// Signed is the first part of the multipart/signed entity, the bytes
	// the signature covers: its MIME header and body, CRLF line endings.
	Signed []byte
}

// Verify checks a multipart/signed entity (RFC 3156 §5: a MIME entity
// starting with its Content-Type header, such as Signed.Bytes() or what
// Open returns) against ring at now. LF line endings are accepted and
// turned into CRLF before checking, as RFC 3156 requires. The signature
// must be made by a key in ring (its primary key or a signing subkey).
// Errors wrap ErrMalformed, ErrTooLarge or ErrBadSignature.
//
// As keys.Public.VerifyAt notes, the signer's key is judged at the
// signature's time; callers that need a key valid now call Check, and
// enforce their own freshness window on SignedAt.
func Verify(entity []byte, ring []*keys.Public, now time.Time) (*Verified, error) {
	if len(entity) > MaxEntityBytes {
		return nil, fmt.Errorf("%w: entity of %d bytes, at most %d allowed", ErrTooLarge, len(entity), MaxEntityBytes)
	}
	entity = crlf(entity)
	br := bufio.NewReader(bytes.NewReader(entity))
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		return nil, fmt.Errorf("%w: Content-Type: %v", ErrMalformed, err)
	}
	if mt != "multipart/signed" || !strings.EqualFold(params["protocol"], "application/pgp-signature") || params["boundary"] == "" {
		return nil, fmt.Errorf("%w: %s; protocol=%q, want multipart/signed; protocol=\"application/pgp-signature\"",
			ErrMalformed, mt, params["protocol"])
	}
	mr := textproto.NewMultipartReader(br, params["boundary"])
	p1, err := mr.NextPart()
	if err != nil {
		return nil, fmt.Errorf("%w: signed part: %v", ErrMalformed, err)
	}
	var signed bytes.Buffer
	if err := textproto.WriteHeader(&signed, p1.Header); err != nil {
		return nil, fmt.Errorf("%w: signed part header: %v", ErrMalformed, err)
	}
	if _, err := io.Copy(&signed, p1); err != nil {
		return nil, fmt.Errorf("%w: signed part: %v", ErrMalformed, err)
	}
	p2, err := mr.NextPart()
	if err != nil {
		return nil, fmt.Errorf("%w: signature part: %v", ErrMalformed, err)
	}
	if t, _, _ := mime.ParseMediaType(p2.Header.Get("Content-Type")); t != "application/pgp-signature" {
		return nil, fmt.Errorf("%w: second part is %q, want application/pgp-signature", ErrMalformed, t)
	}
	e, err := message.New(message.Header{Header: p2.Header}, p2)
	if err != nil {
		return nil, fmt.Errorf("%w: signature part: %v", ErrMalformed, err)
	}
	sigBytes, err := io.ReadAll(io.LimitReader(e.Body, keys.MaxSignatureBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: signature part: %v", ErrMalformed, err)
	}
	if len(sigBytes) > keys.MaxSignatureBytes {
		return nil, fmt.Errorf("%w: signature part over %d bytes", ErrTooLarge, keys.MaxSignatureBytes)
	}
	sig, err := readSignature(sigBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	signer := findSigner(ring, sig)
	if signer == nil {
		return nil, fmt.Errorf("%w: made by key %s, which is not in the keyring", ErrBadSignature, issuer(sig))
	}
	at, err := signer.VerifyAt(signed.Bytes(), sigBytes, now)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return &Verified{Fingerprint: signer.Fingerprint, SignedAt: at, Signed: signed.Bytes()}, nil
}

// findSigner returns the key in ring whose primary key or a subkey issued
// sig.
func findSigner(ring []*keys.Public, sig *packet.Signature) *keys.Public {
	for _, p := range ring {
		e := p.Entity()
		if sig.CheckKeyIdOrFingerprint(e.PrimaryKey) {
			return p
		}
		for _, sk := range e.Subkeys {
			if sig.CheckKeyIdOrFingerprint(sk.PublicKey) {
				return p
			}
		}
	}
	return nil
}

func issuer(sig *packet.Signature) string {
	if len(sig.IssuerFingerprint) > 0 {
		return fmt.Sprintf("%X", sig.IssuerFingerprint)
	}
	if sig.IssuerKeyId != nil {
		return fmt.Sprintf("%016X", *sig.IssuerKeyId)
	}
	return "(no issuer)"
}

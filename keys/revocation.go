package keys

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Revocation is a revocation of a key, or of one of its subkeys, made by
// the key's own primary key (RFC 9580 §5.2.1.11, §5.2.1.12).
type Revocation struct {
	Subkey string    // the revoked subkey's fingerprint; "" for the key itself
	At     time.Time // when it was made
	Reason string    // "key compromised", "key retired: \"text\"", or ""
}

// String says what is revoked and why: "revoked on 2026-11-01 (key
// compromised)", "subkey ABCD… revoked on …".
func (r Revocation) String() string {
	s := "revoked on " + r.At.UTC().Format(time.DateOnly)
	if r.Subkey != "" {
		s = "subkey " + r.Subkey + " " + s
	}
	if r.Reason != "" {
		s += " (" + r.Reason + ")"
	}
	return s
}

// Revocations lists the revocations p carries that verify with its
// primary key: of the key itself first, then of its subkeys, in key
// order. A revocation needs no other check: only the key's owner can
// make one, and it can only disable.
func (p *Public) Revocations() []Revocation {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.entity
	pk := e.PrimaryKey
	var out []Revocation
	for _, s := range e.Revocations {
		if pk.VerifyRevocationSignature(s.Packet) == nil {
			out = append(out, Revocation{At: s.Packet.CreationTime, Reason: revocationText(s.Packet)})
		}
	}
	for _, sk := range e.Subkeys {
		for _, s := range sk.Revocations {
			if pk.VerifySubkeyRevocationSignature(s.Packet, sk.PublicKey) == nil {
				out = append(out, Revocation{Subkey: fingerprint(sk.PublicKey), At: s.Packet.CreationTime, Reason: revocationText(s.Packet)})
			}
		}
	}
	return out
}

// RevocationsSince lists the revocations of p ([Public.Revocations])
// that old does not carry: what a refresh of old into p
// ([Public.Refresh]) brings.
func (p *Public) RevocationsSince(old *Public) []Revocation {
	had := map[Revocation]bool{}
	for _, r := range old.Revocations() {
		had[r] = true
	}
	var out []Revocation
	for _, r := range p.Revocations() {
		if !had[r] {
			out = append(out, r)
		}
	}
	return out
}

// revocationText is the reason a revocation signature gives, in words.
func revocationText(s *packet.Signature) string {
	reason := ""
	if s.RevocationReason != nil {
		switch *s.RevocationReason {
		case packet.NoReason:
			reason = "no reason given"
		case packet.KeyCompromised:
			reason = "key compromised"
		case packet.KeySuperseded:
			reason = "key superseded"
		case packet.KeyRetired:
			reason = "key retired"
		case packet.UserIDNotValid:
			reason = "user ID no longer valid"
		default:
			reason = fmt.Sprintf("reason %d", *s.RevocationReason)
		}
	}
	if t := strings.TrimSpace(s.RevocationReasonText); t != "" {
		if reason != "" {
			reason += ": "
		}
		reason += fmt.Sprintf("%q", t)
	}
	return reason
}

// RevocationCert is a bare key revocation certificate: one key revocation
// signature and nothing else, as `gpg --gen-revoke` writes it (and gpg
// keeps in openpgp-revocs.d, defused with a leading ':' that has to be
// taken off first).
type RevocationCert struct {
	// Issuer is the fingerprint of the key that made it, if the
	// signature names it; IssuerKeyID its key ID (16 hex digits).
	Issuer, IssuerKeyID string
	sig                 *packet.Signature
}

// ParseRevocationCert reads a bare revocation certificate (binary, or in
// an armored PUBLIC KEY BLOCK). Anything else, a key included, fails with
// ErrNoKey: read keys with ParsePublic first.
func ParseRevocationCert(data []byte) (*RevocationCert, error) {
	if len(data) > MaxSignatureBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d allowed", ErrTooLarge, len(data), MaxSignatureBytes)
	}
	bin, err := dearmor(data, false)
	if err != nil {
		return nil, err
	}
	r := packet.NewReader(bytes.NewReader(bin))
	var sig *packet.Signature
	for n := 0; ; n++ {
		pkt, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNoKey, err)
		}
		s, ok := pkt.(*packet.Signature)
		if !ok || n > 0 || s.SigType != packet.SigTypeKeyRevocation {
			return nil, fmt.Errorf("%w: not a key revocation certificate", ErrNoKey)
		}
		sig = s
	}
	if sig == nil {
		return nil, fmt.Errorf("%w: not a key revocation certificate", ErrNoKey)
	}
	c := &RevocationCert{sig: sig}
	if sig.IssuerFingerprint != nil {
		c.Issuer = strings.ToUpper(hex.EncodeToString(sig.IssuerFingerprint))
	}
	if sig.IssuerKeyId != nil {
		c.IssuerKeyID = fmt.Sprintf("%016X", *sig.IssuerKeyId)
	}
	return c, nil
}

// Of reports whether c names p as the key that made it (by fingerprint,
// or by key ID when it names no fingerprint). Only Revoke verifies it.
func (c *RevocationCert) Of(p *Public) bool {
	if c.Issuer != "" {
		return c.Issuer == p.Fingerprint
	}
	return c.IssuerKeyID != "" && strings.HasSuffix(p.Fingerprint, c.IssuerKeyID)
}

// Revoke returns p with the revocation c added, as Refresh merges a copy
// of p that carries it: c must verify with p's primary key (it fails
// with ErrOtherKey otherwise), and ErrNotNewer says that p carries it
// already.
func (p *Public) Revoke(c *RevocationCert) (*Public, error) {
	if err := p.entity.PrimaryKey.VerifyRevocationSignature(c.sig); err != nil {
		return nil, fmt.Errorf("%w: the revocation certificate was not made by key %s: %v", ErrOtherKey, p.Fingerprint, err)
	}
	cp, err := reparse(p)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", p.Fingerprint, err)
	}
	cp.entity.Revocations = append(cp.entity.Revocations, packet.NewVerifiableSig(c.sig))
	return p.Refresh(cp)
}

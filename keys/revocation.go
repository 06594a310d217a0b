package keys

import (
	"fmt"
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

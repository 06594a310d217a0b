package keys

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Successor makes the key that replaces the directory key old (ccdir
// rekey): a new key as spec says (GenerateKey; an empty Name or no
// Emails take old's: the name and addresses of its user IDs, in old's
// order), each of its user IDs certified by old's primary key (a generic
// certification, 0x10, which `gpg --check-sigs` shows as "sig!" by the
// old key), so that whoever trusts the old key can check the new one
// from the key alone. The certifications are made at spec.Now.
func Successor(old *Secret, spec KeySpec) (*Secret, error) {
	if spec.Now.IsZero() {
		spec.Now = time.Now()
	}
	if spec.Name == "" || len(spec.Emails) == 0 {
		var emails []string
		for _, id := range old.pub.UserIDs {
			u := old.entity.Identities[id].UserId
			if spec.Name == "" {
				spec.Name = strings.TrimSpace(u.Name)
			}
			emails = append(emails, strings.TrimSpace(u.Email))
		}
		if len(spec.Emails) == 0 {
			spec.Emails = emails
		}
	}
	if len(spec.Emails) == 0 {
		return nil, fmt.Errorf("key %s has no user ID to give its successor", old.Fingerprint())
	}
	next, err := GenerateKey(spec)
	if err != nil {
		return nil, err
	}
	e, err := next.copyEntity()
	if err != nil {
		return nil, err
	}
	if err := certify(old, e, spec.Now, spec.Rand); err != nil {
		return nil, err
	}
	out, err := newSecret(e)
	if err != nil {
		return nil, err
	}
	out.now = next.now
	return out, nil
}

// certify adds old's certification to every user ID of e.
func certify(old *Secret, e *openpgp.Entity, now time.Time, rand io.Reader) error {
	old.mu.Lock()
	defer old.mu.Unlock()
	resetValidity(old.entity)
	at := now.Truncate(time.Second)
	cfg := &packet.Config{Rand: rand, DefaultHash: SignatureHash, Time: func() time.Time { return at }}
	for _, id := range orderedUserIDs(e, nil) {
		if err := e.Identities[id].SignIdentity(old.entity, cfg); err != nil {
			return fmt.Errorf("certify %q with key %s: %w", id, old.Fingerprint(), err)
		}
	}
	return nil
}

// CertifiedBy reports whether every user ID of p carries a valid
// certification by certifier's primary key.
func (p *Public) CertifiedBy(certifier *Public) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.UserIDs) == 0 {
		return false
	}
	for _, uid := range p.UserIDs {
		if len(certifications(p.entity, uid, []*Public{certifier})) == 0 {
			return false
		}
	}
	return true
}

// certifications are the certifications of e's user ID uid made by one
// of certifiers' primary keys that verify (no revocations).
func certifications(e *openpgp.Entity, uid string, certifiers []*Public) []*packet.Signature {
	id := e.Identities[uid]
	if id == nil {
		return nil
	}
	var out []*packet.Signature
	for _, vs := range id.OtherCertifications {
		s := vs.Packet
		switch s.SigType {
		case packet.SigTypeGenericCert, packet.SigTypePersonaCert, packet.SigTypeCasualCert, packet.SigTypePositiveCert:
		default:
			continue
		}
		for _, c := range certifiers {
			pk := c.entity.PrimaryKey
			if s.CheckKeyIdOrFingerprint(pk) && pk.VerifyUserIdSignature(uid, e.PrimaryKey, s) == nil {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// ArmoredWith is Armored that also keeps, on each user ID, the
// certifications made by certifiers (the directory's earlier keys) that
// verify: a directory key travels with its predecessor's certification.
// Every other third-party certification is dropped, as Armored drops it.
func (p *Public) ArmoredWith(certifiers ...*Public) ([]byte, error) {
	if len(certifiers) == 0 {
		return p.Armored()
	}
	for _, c := range certifiers {
		if c == p {
			return nil, errors.New("keys: a key cannot keep its own certifications as another's")
		}
	}
	// Only p's lock: checking a certification caches nothing in the
	// certifier's entity.
	p.mu.Lock()
	defer p.mu.Unlock()
	keep := map[string][]*packet.Signature{}
	for _, uid := range p.UserIDs {
		keep[uid] = certifications(p.entity, uid, certifiers)
	}
	var bin bytes.Buffer
	if err := serializeMinimal(&bin, p.entity, p.UserIDs, keep); err != nil {
		return nil, err
	}
	return armorKey(bin.Bytes())
}

// Revoked returns s's public key, armored, with a revocation signature
// by s made at now: reason code "key compromised" (RFC 9580 §5.2.3.31)
// and reason as its text, which gpg shows ("revoked: key has been
// compromised"). It is what the directory publishes for the key ccdir
// rekey --revoke-old retires. s itself is left unrevoked (it still signs
// the rekey entry).
func (s *Secret) Revoked(reason string, now time.Time) ([]byte, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" || strings.ContainsAny(reason, "\x00\r\n") {
		return nil, errors.New("a revocation needs a reason of one line")
	}
	e, err := s.copyEntity()
	if err != nil {
		return nil, err
	}
	at := now.Truncate(time.Second)
	if err := e.Revoke(packet.KeyCompromised, reason, &packet.Config{DefaultHash: SignatureHash, Time: func() time.Time { return at }}); err != nil {
		return nil, fmt.Errorf("revoke key %s: %w", s.Fingerprint(), err)
	}
	var pub bytes.Buffer
	if err := e.Serialize(&pub); err != nil {
		return nil, err
	}
	p, err := ParsePublicOne(pub.Bytes())
	if err != nil {
		return nil, err
	}
	return p.Armored()
}

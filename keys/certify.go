package keys

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Successor makes the key that replaces the directory key old (ccdir
// rekey): a new key of algo with old's user IDs, in old's order, each
// certified by old's primary key (a generic certification, 0x10, which
// `gpg --check-sigs` shows as "sig!" by the old key), so that whoever
// trusts the old key can check the new one from the key alone. The new
// key is dated as Generate dates keys; the certifications are made at
// now. rand may be nil for crypto/rand.
func Successor(old *Secret, algo Algo, now time.Time, rand io.Reader) (*Secret, error) {
	if now.IsZero() {
		now = time.Now()
	}
	type uid struct{ name, email string }
	var uids []uid
	for _, id := range old.pub.UserIDs {
		u := old.entity.Identities[id].UserId
		uids = append(uids, uid{strings.TrimSpace(u.Name), strings.TrimSpace(u.Email)})
	}
	if len(uids) == 0 {
		return nil, fmt.Errorf("key %s has no user ID to give its successor", old.Fingerprint())
	}
	next, err := Generate(uids[0].name, uids[0].email, algo, now, rand)
	if err != nil {
		return nil, err
	}
	e := next.entity
	created := e.PrimaryKey.CreationTime
	cfg := &packet.Config{Rand: rand, DefaultHash: crypto.SHA256, Time: func() time.Time { return created }}
	for _, u := range uids[1:] {
		if err := e.AddUserId(u.name, "", u.email, cfg); err != nil {
			return nil, fmt.Errorf("user ID %s <%s>: %w", u.name, u.email, err)
		}
	}
	if err := certify(old, e, now, rand); err != nil {
		return nil, err
	}
	return newSecret(e)
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
	s.mu.Lock()
	var bin bytes.Buffer
	err := s.entity.SerializePrivateWithoutSigning(&bin, nil)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	defer clear(bin.Bytes())
	el, err := openpgp.ReadKeyRing(bytes.NewReader(bin.Bytes()))
	if err != nil || len(el) != 1 {
		return nil, fmt.Errorf("copy of key %s: %v", s.Fingerprint(), err)
	}
	e := el[0]
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

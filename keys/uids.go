package keys

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// KeySpec is what GenerateKey makes a directory key of.
type KeySpec struct {
	// Name is the name part of every user ID ("TLD-OPS directory").
	Name string
	// Emails are the addresses the key answers on, one user ID
	// "Name <email>" each; the first (the command address) is the
	// primary user ID. At least one.
	Emails []string
	// Algo is the key algorithm ("" for AlgoEd25519).
	Algo Algo
	// Lifetime is how long after its creation the key expires; zero:
	// never.
	Lifetime time.Duration
	// Now dates the key (minus KeyBackdate); zero: time.Now.
	Now time.Time
	// Rand is the randomness; nil: crypto/rand.
	Rand io.Reader
}

// GenerateKey makes a v4 key as spec says: an Ed25519 primary key and a
// Cv25519 ECDH subkey (the layout gpg uses), or an RSA primary key and
// RSA subkey, with one self-certified user ID per address, the first one
// primary, each carrying the key's expiry. The key and its
// self-signatures are dated spec.Now truncated to the second minus
// KeyBackdate. RSA generation may not be reproducible even with a fixed
// Rand.
func GenerateKey(spec KeySpec) (*Secret, error) {
	name, err := uidName(spec.Name)
	if err != nil {
		return nil, err
	}
	emails, err := uidEmails(spec.Emails)
	if err != nil {
		return nil, err
	}
	now := spec.Now
	if now.IsZero() {
		now = time.Now()
	}
	created := now.Truncate(time.Second).Add(-KeyBackdate)
	secs, err := lifetimeSecs(spec.Lifetime)
	if err != nil {
		return nil, err
	}
	cfg := &packet.Config{
		Rand:            spec.Rand,
		Time:            func() time.Time { return created },
		DefaultHash:     crypto.SHA256,
		DefaultCipher:   packet.CipherAES256,
		KeyLifetimeSecs: secs,
	}
	switch spec.Algo {
	case AlgoEd25519, "":
		cfg.Algorithm = packet.PubKeyAlgoEdDSA
		cfg.Curve = packet.Curve25519
	case AlgoRSA3072:
		cfg.Algorithm = packet.PubKeyAlgoRSA
		cfg.RSABits = 3072
	case AlgoRSA4096:
		cfg.Algorithm = packet.PubKeyAlgoRSA
		cfg.RSABits = 4096
	default:
		return nil, fmt.Errorf("unknown key algorithm %q", spec.Algo)
	}
	algo := spec.Algo
	if algo == "" {
		algo = AlgoEd25519
	}
	e, err := openpgp.NewEntity(name, "", emails[0], cfg)
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", algo, err)
	}
	for _, email := range emails[1:] {
		if err := e.AddUserId(name, "", email, cfg); err != nil {
			return nil, fmt.Errorf("user ID for %s: %w", email, err)
		}
	}
	return newSecret(e)
}

// uidName checks the name part of the directory key's user IDs.
func uidName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", errors.New("key name is empty")
	}
	if strings.ContainsAny(name, "()<>\x00\r\n") {
		return "", fmt.Errorf("key name %q must not contain ( ) < > or control characters", name)
	}
	return name, nil
}

// uidEmails checks the addresses of the directory key's user IDs: at
// least one, each once (compared case-insensitively).
func uidEmails(emails []string) ([]string, error) {
	if len(emails) == 0 {
		return nil, errors.New("the key needs at least one email")
	}
	out := make([]string, 0, len(emails))
	for _, email := range emails {
		email = strings.TrimSpace(email)
		if at := strings.LastIndexByte(email, '@'); at <= 0 || at == len(email)-1 ||
			strings.ContainsAny(email, "()<>\x00\r\n\t ") {
			return nil, fmt.Errorf("invalid key email %q", email)
		}
		if slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, email) }) {
			return nil, fmt.Errorf("key email %s given twice", email)
		}
		out = append(out, email)
	}
	return out, nil
}

// lifetimeSecs is a key lifetime as OpenPGP writes it (seconds after the
// key's creation; 0: never expires).
func lifetimeSecs(d time.Duration) (uint32, error) {
	if d < 0 {
		return 0, fmt.Errorf("key lifetime %v is negative", d)
	}
	s := d.Round(time.Second) / time.Second
	if s > math.MaxUint32 {
		return 0, fmt.Errorf("key lifetime %v is too long (at most %d years)", d, math.MaxUint32/(365*24*3600))
	}
	if d > 0 && s == 0 {
		s = 1
	}
	return uint32(s), nil
}

// Expires is when the key expires, as its self-signatures say; zero:
// never.
func (s *Secret) Expires() time.Time { return s.pub.Expires }

// Emails are the addresses of the key's valid user IDs (self-certified,
// not revoked), lowercased, the primary user ID's first.
func (s *Secret) Emails() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer resetValidity(s.entity)
	var out []string
	_, primary := s.entity.PrimaryIdentity(time.Time{}, nil)
	for _, id := range validIdentities(s.entity) {
		email := strings.ToLower(id.UserId.Email)
		if id == primary {
			out = slices.Insert(out, 0, email)
		} else if !slices.Contains(out, email) {
			out = append(out, email)
		}
	}
	return slices.Compact(out)
}

// validIdentities are e's user IDs with a valid self-certification that
// no later revocation undoes, in a stable order (by user ID).
func validIdentities(e *openpgp.Entity) []*openpgp.Identity {
	var out []*openpgp.Identity
	for _, id := range e.Identities {
		sig, err := id.LatestValidSelfCertification(time.Time{}, nil)
		if err != nil || id.Revoked(sig, time.Time{}, nil) || id.UserId.Email == "" {
			continue
		}
		out = append(out, id)
	}
	slices.SortFunc(out, func(a, b *openpgp.Identity) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// UserIDChange is what WithUserIDs changed.
type UserIDChange struct {
	Added   []string // addresses that got a user ID (or had a revoked one certified again)
	Revoked []string // addresses whose user ID was revoked
}

// Changed reports whether anything changed.
func (c UserIDChange) Changed() bool { return len(c.Added)+len(c.Revoked) > 0 }

// WithUserIDs returns a copy of the key whose valid user IDs carry
// exactly the addresses in emails (the first, the primary one, must be
// one the key has already): an address without a user ID gets a new one,
// "name <email>", self-certified at now with the key's expiry kept; a
// user ID whose address is not in emails is revoked (reason: user ID no
// longer valid), so that keyrings which merged it learn it is gone. It
// is the one way the directory key's user IDs change (the list's address,
// an incident room's while it is open). Nothing to change gives s itself
// and an empty UserIDChange.
func (s *Secret) WithUserIDs(name string, emails []string, now time.Time) (*Secret, UserIDChange, error) {
	var ch UserIDChange
	name, err := uidName(name)
	if err != nil {
		return nil, ch, err
	}
	if emails, err = uidEmails(emails); err != nil {
		return nil, ch, err
	}
	have := s.Emails()
	if len(have) == 0 || !strings.EqualFold(have[0], emails[0]) {
		return nil, ch, fmt.Errorf("the key's primary user ID is for %s, not %s", strings.Join(have[:min(1, len(have))], ""), emails[0])
	}
	for _, e := range emails {
		if !slices.Contains(have, strings.ToLower(e)) {
			ch.Added = append(ch.Added, e)
		}
	}
	for _, h := range have {
		if !slices.ContainsFunc(emails, func(e string) bool { return strings.EqualFold(e, h) }) {
			ch.Revoked = append(ch.Revoked, h)
		}
	}
	if !ch.Changed() {
		return s, ch, nil
	}
	e, err := s.copyEntity()
	if err != nil {
		return nil, ch, err
	}
	at := s.sigTime(e, now)
	cfg := s.certConfig(at)
	for _, email := range ch.Added {
		if err := certifyUserID(e, name, email, cfg); err != nil {
			return nil, ch, err
		}
	}
	reason := packet.UserIDNotValid
	for _, email := range ch.Revoked {
		for _, id := range validIdentities(e) {
			if !strings.EqualFold(id.UserId.Email, email) {
				continue
			}
			rev := newSelfSig(e.PrimaryKey, packet.SigTypeCertificationRevocation, at)
			rev.RevocationReason = &reason
			rev.RevocationReasonText = "the directory no longer takes mail at " + email
			if err := rev.SignUserId(id.Name, e.PrimaryKey, e.PrivateKey, cfg); err != nil {
				return nil, ch, fmt.Errorf("revoke user ID %s: %w", id.Name, err)
			}
			id.Revocations = append(id.Revocations, packet.NewVerifiableSig(rev))
		}
	}
	resetValidity(e)
	out, err := newSecret(e)
	if err != nil {
		return nil, ch, err
	}
	out.now = s.now
	return out, ch, nil
}

// certifyUserID gives e a self-certified user ID "name <email>" (not
// primary) with e's expiry, or certifies again one that was revoked.
func certifyUserID(e *openpgp.Entity, name, email string, cfg *packet.Config) error {
	uid := packet.NewUserId(name, "", email)
	if uid == nil {
		return fmt.Errorf("user ID for %s: invalid characters", email)
	}
	if id, ok := e.Identities[uid.Id]; ok {
		// Revoked before: a self-certification newer than the
		// revocation makes it valid again.
		latest := latestSelfSig(id)
		if latest == nil {
			return fmt.Errorf("user ID %s has no self-certification", uid.Id)
		}
		return recertify(e, id, latest, keyLifetime(e), cfg)
	}
	lifetime := keyLifetime(e)
	c := *cfg
	c.KeyLifetimeSecs = lifetime
	// Not primary: the entity has user IDs already.
	if err := e.AddUserId(name, "", email, &c); err != nil {
		return fmt.Errorf("user ID for %s: %w", email, err)
	}
	return nil
}

// recertify adds a self-certification to id like latest, dated by cfg,
// with lifetime as the key's lifetime (seconds after its creation).
func recertify(e *openpgp.Entity, id *openpgp.Identity, latest *packet.Signature, lifetime uint32, cfg *packet.Config) error {
	sig := newSelfSig(e.PrimaryKey, packet.SigTypePositiveCert, cfg.Now())
	sig.KeyLifetimeSecs = &lifetime
	sig.FlagsValid, sig.FlagSign, sig.FlagCertify = true, true, true
	sig.IsPrimaryId = latest.IsPrimaryId
	sig.PreferredSymmetric = latest.PreferredSymmetric
	sig.PreferredHash = latest.PreferredHash
	sig.PreferredCompression = latest.PreferredCompression
	sig.SEIPDv1 = true
	if err := sig.SignUserId(id.Name, e.PrimaryKey, e.PrivateKey, cfg); err != nil {
		return fmt.Errorf("certify user ID %s: %w", id.Name, err)
	}
	id.SelfCertifications = append(id.SelfCertifications, packet.NewVerifiableSig(sig))
	return nil
}

// WithExpiry returns a copy of the key that expires at expires (zero:
// never): every valid user ID certified again, at now. It is how the
// directory key's expiry is renewed (ccdir key update-uids --renew).
func (s *Secret) WithExpiry(expires, now time.Time) (*Secret, error) {
	e, err := s.copyEntity()
	if err != nil {
		return nil, err
	}
	var lifetime uint32
	if !expires.IsZero() {
		if !expires.After(e.PrimaryKey.CreationTime) {
			return nil, fmt.Errorf("expiry %s is not after the key's creation", formatTime(expires))
		}
		if lifetime, err = lifetimeSecs(expires.Sub(e.PrimaryKey.CreationTime)); err != nil {
			return nil, err
		}
	}
	cfg := s.certConfig(s.sigTime(e, now))
	for _, id := range validIdentities(e) {
		if err := recertify(e, id, latestSelfSig(id), lifetime, cfg); err != nil {
			return nil, err
		}
	}
	resetValidity(e)
	out, err := newSecret(e)
	if err != nil {
		return nil, err
	}
	out.now = s.now
	return out, nil
}

// copyEntity is a deep copy of the unlocked entity.
func (s *Secret) copyEntity() (*openpgp.Entity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var plain bytes.Buffer
	if err := s.entity.SerializePrivateWithoutSigning(&plain, nil); err != nil {
		return nil, err
	}
	defer clear(plain.Bytes())
	el, err := openpgp.ReadKeyRing(bytes.NewReader(plain.Bytes()))
	if err != nil {
		return nil, err
	}
	if len(el) != 1 {
		return nil, fmt.Errorf("copy of secret key: %d entities", len(el))
	}
	return el[0], nil
}

// sigTime dates new self-signatures of e: now to the second, but after
// every self-signature e has, so that the new ones are the latest.
func (s *Secret) sigTime(e *openpgp.Entity, now time.Time) time.Time {
	if now.IsZero() {
		now = s.now()
	}
	at := now.Truncate(time.Second)
	for _, id := range e.Identities {
		for _, sig := range append(slices.Clone(id.SelfCertifications), id.Revocations...) {
			if !sig.Packet.CreationTime.Before(at) {
				at = sig.Packet.CreationTime.Truncate(time.Second).Add(time.Second)
			}
		}
	}
	return at
}

// certConfig signs self-signatures dated at.
func (s *Secret) certConfig(at time.Time) *packet.Config {
	return &packet.Config{
		Time:          func() time.Time { return at },
		DefaultHash:   crypto.SHA256,
		DefaultCipher: packet.CipherAES256,
	}
}

// newSelfSig is a self-signature of type t by pk, dated at.
func newSelfSig(pk *packet.PublicKey, t packet.SignatureType, at time.Time) *packet.Signature {
	return &packet.Signature{
		Version:           pk.Version,
		SigType:           t,
		PubKeyAlgo:        pk.PubKeyAlgo,
		Hash:              crypto.SHA256,
		CreationTime:      at,
		IssuerKeyId:       &pk.KeyId,
		IssuerKeyVersion:  uint8(pk.Version),
		IssuerFingerprint: pk.Fingerprint,
	}
}

// latestSelfSig is id's newest valid self-certification, or nil.
func latestSelfSig(id *openpgp.Identity) *packet.Signature {
	sig, err := id.LatestValidSelfCertification(time.Time{}, nil)
	if err != nil {
		return nil
	}
	return sig
}

// keyLifetime is e's key lifetime as its primary user ID's latest
// self-certification says (0: never expires).
func keyLifetime(e *openpgp.Entity) uint32 {
	sig, _ := e.PrimaryIdentity(time.Time{}, nil)
	if sig == nil || sig.KeyLifetimeSecs == nil {
		return 0
	}
	return *sig.KeyLifetimeSecs
}

// serializeOrdered is e.Serialize (the public part, every signature)
// with the user IDs in a fixed order: the primary one first, then the
// others by user ID. go-crypto keeps user IDs in a map, so Serialize
// writes them in a different order each time, and the public key the
// directory records and publishes must be the same for the same key.
func serializeOrdered(w io.Writer, e *openpgp.Entity) error {
	if err := e.PrimaryKey.Serialize(w); err != nil {
		return err
	}
	for _, sig := range append(slices.Clone(e.Revocations), e.DirectSignatures...) {
		if err := sig.Packet.Serialize(w); err != nil {
			return err
		}
	}
	for _, uid := range uidOrder(e) {
		if err := e.Identities[uid].Serialize(w); err != nil {
			return err
		}
	}
	for i := range e.Subkeys {
		if err := e.Subkeys[i].Serialize(w, false); err != nil {
			return err
		}
	}
	return nil
}

// uidOrder is e's user IDs, the primary one first, then the others in
// order.
func uidOrder(e *openpgp.Entity) []string {
	_, primary := e.PrimaryIdentity(time.Time{}, nil)
	defer resetValidity(e)
	var ids []string
	for uid := range e.Identities {
		if primary == nil || uid != primary.Name {
			ids = append(ids, uid)
		}
	}
	slices.Sort(ids)
	if primary != nil {
		ids = slices.Insert(ids, 0, primary.Name)
	}
	return ids
}

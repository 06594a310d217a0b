package keys

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Input limits.
const (
	// MaxKeyBytes caps one key file (ParsePublicOne, ReadSecretFile).
	MaxKeyBytes = 1 << 20
	// MaxBundleBytes caps a bundle of keys (ParsePublic).
	MaxBundleBytes = 64 << 20
	// MaxSignatureBytes caps a detached signature given to Verify.
	MaxSignatureBytes = 64 << 10
)

// MinRSABits is the smallest RSA modulus Check accepts.
const MinRSABits = 2048

// checkConfig is the policy used to judge imported keys and signatures.
func checkConfig(now time.Time) *packet.Config {
	return &packet.Config{
		MinRSABits: MinRSABits,
		Time:       func() time.Time { return now },
	}
}

// Public is a parsed public key (one OpenPGP entity, no secret material).
//
// The exported fields are filled in by the parser and are informational;
// changing them changes nothing in the key. Check, Verify and Armored
// serialise on an internal lock, because go-crypto caches signature
// validity inside the entity.
type Public struct {
	Fingerprint string    // primary key fingerprint, uppercase hex (40 digits for v4)
	Created     time.Time // primary key creation time
	Expires     time.Time // zero = never (from the primary self-signature)
	Algorithm   string    // primary key, gpg style: "ed25519", "rsa3072", "nistp256", ...
	UserIDs     []string  // user IDs with a self-signature, in key order
	Emails      []string  // lowercased, deduplicated emails from UserIDs

	entity *openpgp.Entity
	mu     *sync.Mutex
	// checkedAt, if not zero, is the time for which the validity cached in
	// entity was computed (with checkConfig): Check at that time keeps it.
	checkedAt time.Time
}

// Entity returns the underlying go-crypto entity. It never holds secret key
// material. Callers must not modify it.
func (p *Public) Entity() *openpgp.Entity { return p.entity }

// HasEmail reports whether one of the user IDs carries email, compared
// case-insensitively.
func (p *Public) HasEmail(email string) bool {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" {
		return false
	}
	for _, e := range p.Emails {
		if e == email {
			return true
		}
	}
	return false
}

// String returns "ALGO FINGERPRINT".
func (p *Public) String() string { return p.Algorithm + " " + p.Fingerprint }

// GroupFingerprint writes a fingerprint in upper case, in groups of four
// characters, as people compare them: "ABCD 1234 …" (spaces in fpr are
// dropped first).
func GroupFingerprint(fpr string) string {
	fpr = strings.ToUpper(strings.ReplaceAll(fpr, " ", ""))
	var b strings.Builder
	for i := 0; i < len(fpr); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(fpr[i:min(i+4, len(fpr))])
	}
	return b.String()
}

// ParsePublic parses every key in data: binary transferable public keys, or
// one or several armored "PGP PUBLIC KEY BLOCK"s (as `gpg --export --armor a b`
// or a concatenation of files produces). Text around armor blocks is
// ignored. data may be at most MaxBundleBytes.
//
// It fails with ErrSecretKey if any packet carries secret key material, with
// ErrNoKey if there is no key, and if any key in the input cannot be read
// (go-crypto would otherwise skip it silently).
func ParsePublic(data []byte) ([]*Public, error) {
	return parsePublic(data, MaxBundleBytes, time.Time{})
}

// ParsePublicOne is ParsePublic for input that must hold exactly one key, at
// most MaxKeyBytes.
func ParsePublicOne(data []byte) (*Public, error) {
	return ParsePublicOneAt(data, time.Time{})
}

// ParsePublicOneAt is ParsePublicOne for a key about to be checked at t
// (zero: no time): Emails are the user IDs self-certified at t, and the
// signatures verified for them are not verified again by Check(t), which
// saves one signature verification per key when thousands are read for
// a digest.
func ParsePublicOneAt(data []byte, t time.Time) (*Public, error) {
	ps, err := parsePublic(data, MaxKeyBytes, t)
	if err != nil {
		return nil, err
	}
	if len(ps) != 1 {
		fprs := make([]string, len(ps))
		for i, p := range ps {
			fprs[i] = p.Fingerprint
		}
		return nil, fmt.Errorf("expected one key, found %d (%s)", len(ps), strings.Join(fprs, ", "))
	}
	return ps[0], nil
}

func parsePublic(data []byte, limit int, at time.Time) ([]*Public, error) {
	if len(data) > limit {
		return nil, fmt.Errorf("%w: %d bytes, at most %d allowed", ErrTooLarge, len(data), limit)
	}
	bin, err := dearmor(data, false)
	if err != nil {
		return nil, err
	}
	sc, err := scanPackets(bin)
	if err != nil {
		return nil, err
	}
	if sc.secret {
		return nil, fmt.Errorf("%w: export the public key only (gpg --export --armor)", ErrSecretKey)
	}
	if len(sc.primaries) == 0 {
		return nil, ErrNoKey
	}
	el, err := openpgp.ReadKeyRing(bytes.NewReader(bin))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoKey, err)
	}
	got := make(map[string]bool, len(el))
	out := make([]*Public, 0, len(el))
	for _, e := range el {
		// Defence in depth; scanPackets already refused secret packets.
		if hasSecret(e) {
			return nil, ErrSecretKey
		}
		p := newPublic(e, sc.uids[fingerprint(e.PrimaryKey)], at)
		got[p.Fingerprint] = true
		out = append(out, p)
	}
	for _, fpr := range sc.primaries {
		if !got[fpr] {
			return nil, fmt.Errorf("key %s cannot be read (malformed, unsupported, or without user ID)", fpr)
		}
	}
	if len(out) == 0 {
		return nil, ErrNoKey
	}
	return out, nil
}

// dearmor returns the binary packets in data. Binary input is returned as
// is. Otherwise every armor block that starts at the beginning of a line is
// decoded and the bodies are concatenated. A private key block fails with
// ErrSecretKey unless allowSecret.
func dearmor(data []byte, allowSecret bool) ([]byte, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, ErrNoKey
	}
	if trimmed[0]&0x80 != 0 { // an OpenPGP packet tag always has bit 7 set
		return trimmed, nil
	}
	begin := []byte("-----BEGIN PGP ")
	end := []byte("-----END PGP ")
	var out bytes.Buffer
	blocks := 0
	rest := data
	for {
		i := bytes.Index(rest, begin)
		if i < 0 {
			break
		}
		if i > 0 && rest[i-1] != '\n' {
			// Not at the start of a line, e.g. gpg's revocation certificates,
			// which are defused with a leading ':'.
			rest = rest[i+len(begin):]
			continue
		}
		seg := rest[i:]
		j := bytes.Index(seg, end)
		if j < 0 {
			return nil, fmt.Errorf("armor block %d has no END line", blocks+1)
		}
		k := bytes.IndexByte(seg[j:], '\n')
		stop := len(seg)
		if k >= 0 {
			stop = j + k + 1
		}
		blk, err := armor.Decode(bytes.NewReader(seg[:stop]))
		if err != nil {
			return nil, fmt.Errorf("armor block %d: %v", blocks+1, err)
		}
		switch blk.Type {
		case openpgp.PublicKeyType:
		case openpgp.PrivateKeyType:
			if !allowSecret {
				return nil, fmt.Errorf("%w: armor block %d is a private key block", ErrSecretKey, blocks+1)
			}
		default:
			return nil, fmt.Errorf("armor block %d is %q, not a key block", blocks+1, blk.Type)
		}
		if _, err := io.Copy(&out, blk.Body); err != nil {
			return nil, fmt.Errorf("armor block %d: %v", blocks+1, err)
		}
		blocks++
		rest = seg[stop:]
	}
	if blocks == 0 {
		return nil, fmt.Errorf("%w: neither binary OpenPGP data nor an armored key block", ErrNoKey)
	}
	return out.Bytes(), nil
}

// scanResult is what a flat pass over the packets finds: go-crypto keeps
// user IDs in a map (losing their order) and skips keys it cannot read.
type scanResult struct {
	primaries []string            // primary key fingerprints, in order
	uids      map[string][]string // user IDs per primary, in order
	secret    bool                // any secret-key packet seen
}

func scanPackets(bin []byte) (scanResult, error) {
	sc := scanResult{uids: map[string][]string{}}
	r := packet.NewReader(bytes.NewReader(bin))
	cur := ""
	for {
		p, err := r.Next()
		if err == io.EOF {
			return sc, nil
		}
		if err != nil {
			var unsupported pgperrors.UnsupportedError
			if errors.As(err, &unsupported) {
				continue
			}
			return sc, fmt.Errorf("%w: %v", ErrNoKey, err)
		}
		switch pk := p.(type) {
		case *packet.PrivateKey:
			sc.secret = true
		case *packet.PublicKey:
			if !pk.IsSubkey {
				cur = fingerprint(pk)
				sc.primaries = append(sc.primaries, cur)
			}
		case *packet.UserId:
			if cur != "" {
				sc.uids[cur] = append(sc.uids[cur], pk.Id)
			}
		}
	}
}

func hasSecret(e *openpgp.Entity) bool {
	if e.PrivateKey != nil {
		return true
	}
	for _, sk := range e.Subkeys {
		if sk.PrivateKey != nil {
			return true
		}
	}
	return false
}

func fingerprint(pk *packet.PublicKey) string {
	return strings.ToUpper(hex.EncodeToString(pk.Fingerprint))
}

// newPublic describes e. uidOrder is the order of user IDs in the input.
// newPublic describes e. Its user IDs count when self-certified at at
// (zero: at any time); with a time, the signature validity go-crypto
// caches in e is left for Check at the same time.
func newPublic(e *openpgp.Entity, uidOrder []string, at time.Time) *Public {
	p := &Public{
		Fingerprint: fingerprint(e.PrimaryKey),
		Created:     e.PrimaryKey.CreationTime,
		Algorithm:   algorithmName(e.PrimaryKey),
		entity:      e,
		mu:          new(sync.Mutex),
	}
	p.UserIDs = orderedUserIDs(e, uidOrder)
	if at.IsZero() {
		p.Expires = expiry(e, at) // validates without a date, then resets
	}
	var cfg *packet.Config
	if !at.IsZero() {
		cfg = checkConfig(at)
	}
	seen := map[string]bool{}
	for _, uid := range p.UserIDs {
		// Only a user ID the key certified itself names its owner: one
		// without a valid self-signature can be added by anyone.
		if _, err := e.Identities[uid].LatestValidSelfCertification(at, cfg); err != nil {
			continue
		}
		email := strings.ToLower(strings.TrimSpace(e.Identities[uid].UserId.Email))
		if email == "" && strings.Contains(uid, "@") && !strings.ContainsAny(uid, " <>") {
			email = strings.ToLower(uid) // a bare "user@example.org" user ID
		}
		if email != "" && !seen[email] {
			seen[email] = true
			p.Emails = append(p.Emails, email)
		}
	}
	if at.IsZero() {
		resetValidity(e) // the checks above cached validity without a date
	} else {
		p.Expires = expiry(e, at) // from the signatures just verified
		p.checkedAt = at
	}
	return p
}

func orderedUserIDs(e *openpgp.Entity, order []string) []string {
	var ids []string
	seen := map[string]bool{}
	for _, id := range order {
		if _, ok := e.Identities[id]; ok && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	var rest []string
	for id := range e.Identities {
		if !seen[id] {
			rest = append(rest, id)
		}
	}
	sort.Strings(rest)
	return append(ids, rest...)
}

// expiry returns the primary key expiry from the latest valid primary
// self-signature (and direct-key signature), ignoring time; zero = never.
// expiry reads the key's expiry from its self-signatures valid at at (zero:
// the latest valid ones). With a time, the validity go-crypto caches is
// kept (see newPublic); without, it is reset.
func expiry(e *openpgp.Entity, at time.Time) time.Time {
	var exp time.Time
	consider := func(sig *packet.Signature) {
		if sig == nil || sig.KeyLifetimeSecs == nil || *sig.KeyLifetimeSecs == 0 {
			return
		}
		t := e.PrimaryKey.CreationTime.Add(time.Duration(*sig.KeyLifetimeSecs) * time.Second)
		if exp.IsZero() || t.Before(exp) {
			exp = t
		}
	}
	cfg := checkConfig(at)
	if sig, err := e.PrimarySelfSignature(at, cfg); err == nil {
		consider(sig)
	}
	if len(e.DirectSignatures) > 0 {
		if sig, err := e.LatestValidDirectSignature(at, cfg); err == nil {
			consider(sig)
		}
	}
	if at.IsZero() {
		resetValidity(e)
	}
	return exp
}

// algorithmName names the public key algorithm the way gpg lists it.
func algorithmName(pk *packet.PublicKey) string {
	switch pk.PubKeyAlgo {
	case packet.PubKeyAlgoRSA, packet.PubKeyAlgoRSASignOnly, packet.PubKeyAlgoRSAEncryptOnly:
		return bitsName("rsa", pk)
	case packet.PubKeyAlgoDSA:
		return bitsName("dsa", pk)
	case packet.PubKeyAlgoElGamal:
		return bitsName("elg", pk)
	case packet.PubKeyAlgoEd25519:
		return "ed25519"
	case packet.PubKeyAlgoEd448:
		return "ed448"
	case packet.PubKeyAlgoX25519:
		return "cv25519"
	case packet.PubKeyAlgoX448:
		return "cv448"
	case packet.PubKeyAlgoEdDSA, packet.PubKeyAlgoECDSA, packet.PubKeyAlgoECDH:
		curve, err := pk.Curve()
		if err != nil {
			break
		}
		switch curve {
		case packet.Curve25519:
			if pk.PubKeyAlgo == packet.PubKeyAlgoECDH {
				return "cv25519"
			}
			return "ed25519"
		case packet.Curve448:
			if pk.PubKeyAlgo == packet.PubKeyAlgoECDH {
				return "cv448"
			}
			return "ed448"
		case packet.CurveNistP256:
			return "nistp256"
		case packet.CurveNistP384:
			return "nistp384"
		case packet.CurveNistP521:
			return "nistp521"
		case packet.CurveBrainpoolP256:
			return "brainpoolP256r1"
		case packet.CurveBrainpoolP384:
			return "brainpoolP384r1"
		case packet.CurveBrainpoolP512:
			return "brainpoolP512r1"
		case packet.CurveSecP256k1:
			return "secp256k1"
		}
		return strings.ToLower(string(curve))
	}
	return fmt.Sprintf("algo%d", pk.PubKeyAlgo)
}

func bitsName(prefix string, pk *packet.PublicKey) string {
	bits, err := pk.BitLength()
	if err != nil {
		return prefix
	}
	return fmt.Sprintf("%s%d", prefix, bits)
}

// validAt readies p's entity for checks at t (p.mu held): go-crypto
// caches the validity of signatures inside the entity, without the time
// it was checked at, so a check at another time, or at the zero time,
// starts from none.
func (p *Public) validAt(t time.Time) *openpgp.Entity {
	if !p.checkedAt.Equal(t) || t.IsZero() {
		resetValidity(p.entity)
	}
	p.checkedAt = t
	return p.entity
}

// resetValidity forgets the signature validity go-crypto caches inside the
// entity. The cache depends on the time of the check (an expired signature
// is cached as invalid), so a later check at another time must start afresh.
func resetValidity(e *openpgp.Entity) {
	reset := func(sigs []*packet.VerifiableSignature) {
		for _, s := range sigs {
			s.Valid = nil
		}
	}
	reset(e.Revocations)
	reset(e.DirectSignatures)
	for _, id := range e.Identities {
		reset(id.SelfCertifications)
		reset(id.OtherCertifications)
		reset(id.Revocations)
	}
	for _, sk := range e.Subkeys {
		reset(sk.Bindings)
		reset(sk.Revocations)
	}
}

// Armored returns the armored public key: the primary key with its
// revocations and direct-key signatures, each user ID with its self-signatures
// and self-revocations (third-party certifications are dropped), and the
// subkeys with their binding and revocation signatures. Each signature is
// written once, with only the unhashed subpackets a reader needs (issuer
// key ID, issuer fingerprint, embedded back-signature): what anyone on
// the way can add to a signature without breaking it is dropped. The
// output is the same for the same key.
func (p *Public) Armored() ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var bin bytes.Buffer
	if err := serializeMinimal(&bin, p.entity, p.UserIDs, nil); err != nil {
		return nil, err
	}
	return armorKey(bin.Bytes())
}

// armorKey armors the binary public key bin.
func armorKey(bin []byte) ([]byte, error) {
	var out bytes.Buffer
	w, err := armor.Encode(&out, openpgp.PublicKeyType, nil)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(bin); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// serializeMinimal writes e as Armored describes, each user ID of uids
// with the third-party certifications certs gives for it (ArmoredWith;
// nil: none).
func serializeMinimal(w io.Writer, e *openpgp.Entity, uids []string, certs map[string][]*packet.Signature) error {
	// Each signature is written minimal (minimalSig), once.
	sigs := func(list []*packet.VerifiableSignature) error {
		seen := map[string]bool{}
		for _, s := range list {
			pkt, id, err := minimalSig(s.Packet)
			if err != nil {
				return err
			}
			if seen[id] {
				continue
			}
			seen[id] = true
			if _, err := w.Write(pkt); err != nil {
				return err
			}
		}
		return nil
	}
	if err := e.PrimaryKey.Serialize(w); err != nil {
		return err
	}
	if err := sigs(e.Revocations); err != nil {
		return err
	}
	if err := sigs(e.DirectSignatures); err != nil {
		return err
	}
	for _, uid := range uids {
		id := e.Identities[uid]
		if err := id.UserId.Serialize(w); err != nil {
			return err
		}
		if err := sigs(id.Revocations); err != nil {
			return err
		}
		if err := sigs(id.SelfCertifications); err != nil {
			return err
		}
		var others []*packet.VerifiableSignature
		for _, s := range certs[uid] {
			others = append(others, packet.NewVerifiableSig(s))
		}
		if err := sigs(others); err != nil {
			return err
		}
	}
	for _, sk := range e.Subkeys {
		if err := sk.PublicKey.Serialize(w); err != nil {
			return err
		}
		if err := sigs(sk.Revocations); err != nil {
			return err
		}
		if err := sigs(sk.Bindings); err != nil {
			return err
		}
	}
	return nil
}

// Check reports why the key cannot be used at now to encrypt to and to verify
// signatures from, or nil. The error wraps ErrRevoked, ErrExpired,
// ErrNoValidSelfSig, ErrWeakKey, ErrUnsupportedKey, ErrNoEncryptionKey or
// ErrNoSigningKey.
// The policy requires RSA keys of at least MinRSABits bits.
func (p *Public) Check(now time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.validAt(now)
	cfg := checkConfig(now)

	if sig, err := e.VerifyPrimaryKey(now, cfg); err != nil {
		return p.primaryError(err, sig, now)
	}
	if _, err := e.EncryptionKeyWithError(now, cfg); err != nil {
		return p.encryptionError(err)
	}
	if _, ok := e.SigningKey(now, cfg); !ok {
		return fmt.Errorf("%w: key %s has no valid signing-capable key", ErrNoSigningKey, p.Fingerprint)
	}
	return nil
}

func (p *Public) primaryError(err error, sig *packet.Signature, now time.Time) error {
	switch {
	case errors.Is(err, pgperrors.ErrKeyRevoked):
		return fmt.Errorf("%w: key %s%s", ErrRevoked, p.Fingerprint, revocationReason(p.entity))
	case errors.Is(err, pgperrors.ErrKeyExpired):
		if t := expiredAt(p.entity, sig, now); !t.IsZero() {
			return fmt.Errorf("%w: key %s expired on %s", ErrExpired, p.Fingerprint, formatTime(t))
		}
		return fmt.Errorf("%w: key %s", ErrExpired, p.Fingerprint)
	}
	// go-crypto reports this case with an unexported errors.New value
	// ("no valid self signature found"), so there is nothing to match:
	// every other error means no usable self-signature.
	if t := earliestSelfSig(p.entity); !t.IsZero() && t.After(now) {
		return fmt.Errorf("%w: key %s: self-signature dated %s is in the future (check the clock)",
			ErrNoValidSelfSig, p.Fingerprint, formatTime(t))
	}
	return fmt.Errorf("%w: key %s: %v", ErrNoValidSelfSig, p.Fingerprint, err)
}

func (p *Public) encryptionError(err error) error {
	var primaryErr, subErr error
	subID := ""
	var sel pgperrors.ErrEncryptionKeySelection
	var selp *pgperrors.ErrEncryptionKeySelection
	switch {
	case errors.As(err, &sel):
	case errors.As(err, &selp) && selp != nil:
		sel = *selp
	default:
		return fmt.Errorf("%w: key %s: %v", ErrNoEncryptionKey, p.Fingerprint, err)
	}
	primaryErr, subErr = sel.PrimaryKeyErr, sel.EncSelectionErr
	if sel.EncSelectionKeyId != nil {
		subID = *sel.EncSelectionKeyId
	}

	var weak pgperrors.WeakAlgorithmError
	if primaryErr != nil {
		if errors.As(primaryErr, &weak) {
			sentinel, why := refusedAlgorithm(p.entity.PrimaryKey, weak)
			return fmt.Errorf("%w: key %s: primary key: %s", sentinel, p.Fingerprint, why)
		}
		return fmt.Errorf("%w: key %s: %v", ErrNoEncryptionKey, p.Fingerprint, primaryErr)
	}
	if errors.As(subErr, &weak) {
		sentinel, why := refusedAlgorithm(p.subkey(subID), weak)
		return fmt.Errorf("%w: key %s: subkey %s: %s", sentinel, p.Fingerprint, strings.ToUpper(subID), why)
	}
	if subID != "" {
		detail := fmt.Sprint(subErr)
		if errors.Is(subErr, pgperrors.ErrKeyExpired) {
			detail = "expired"
		}
		return fmt.Errorf("%w: key %s: encryption subkey %s: %s", ErrNoEncryptionKey, p.Fingerprint,
			strings.ToUpper(subID), detail)
	}
	return fmt.Errorf("%w: key %s has no encryption-capable subkey", ErrNoEncryptionKey, p.Fingerprint)
}

func (p *Public) subkey(keyID string) *packet.PublicKey {
	for _, sk := range p.entity.Subkeys {
		if strings.EqualFold(sk.PublicKey.KeyIdString(), keyID) {
			return sk.PublicKey
		}
	}
	return nil
}

// expiredAt returns when the key or its self-signature expired, or zero.
func expiredAt(e *openpgp.Entity, sig *packet.Signature, now time.Time) time.Time {
	var at time.Time
	consider := func(t time.Time) {
		if !t.After(now) && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	if sig != nil {
		if sig.KeyLifetimeSecs != nil && *sig.KeyLifetimeSecs != 0 {
			consider(e.PrimaryKey.CreationTime.Add(time.Duration(*sig.KeyLifetimeSecs) * time.Second))
		}
		if sig.SigLifetimeSecs != nil && *sig.SigLifetimeSecs != 0 {
			consider(sig.CreationTime.Add(time.Duration(*sig.SigLifetimeSecs) * time.Second))
		}
	}
	if at.IsZero() {
		if exp := expiry(e, time.Time{}); !exp.IsZero() && !exp.After(now) {
			at = exp
		}
	}
	return at
}

func earliestSelfSig(e *openpgp.Entity) time.Time {
	var t time.Time
	for _, id := range e.Identities {
		for _, s := range id.SelfCertifications {
			if t.IsZero() || s.Packet.CreationTime.Before(t) {
				t = s.Packet.CreationTime
			}
		}
	}
	return t
}

func revocationReason(e *openpgp.Entity) string {
	for _, r := range e.Revocations {
		if r.Valid == nil || !*r.Valid {
			continue
		}
		on := ", revocation dated " + formatTime(r.Packet.CreationTime)
		if reason := revocationText(r.Packet); reason != "" {
			return on + " (" + reason + ")"
		}
		return on
	}
	return ""
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// Verify checks a detached signature (binary packets, or armored) made by
// this key over data, at time.Now, and returns the signature's creation time.
// See VerifyAt.
func (p *Public) Verify(data, sig []byte) (time.Time, error) {
	return p.VerifyAt(data, sig, time.Now())
}

// VerifyAt checks a detached signature made by this key over data and
// returns its creation time. The signature is exactly one signature
// packet (armored or binary): go-crypto would take a block of several as
// good as soon as one of them verifies, made by whoever (see
// SplitSignatures). A signature dated after now fails. Note that
// go-crypto judges the key at the signature's time, not at now: callers
// that need a currently valid key call Check(now) as well and enforce their
// own window on the returned time. Errors wrap ErrBadSignature.
func (p *Public) VerifyAt(data, sig []byte, now time.Time) (time.Time, error) {
	return p.verifyAt(data, sig, checkConfig(now))
}

// verifyAt is VerifyAt with the policy cfg.
func (p *Public) verifyAt(data, sig []byte, cfg *packet.Config) (time.Time, error) {
	sigs, err := SplitSignatures(sig)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if len(sigs) != 1 {
		return time.Time{}, fmt.Errorf("%w: %d signatures in one block, where one was expected", ErrBadSignature, len(sigs))
	}
	sigR := bytes.NewReader(sigs[0])
	p.mu.Lock()
	defer p.mu.Unlock()
	resetValidity(p.entity)
	p.checkedAt = time.Time{}
	s, _, err := openpgp.VerifyDetachedSignature(openpgp.EntityList{p.entity}, bytes.NewReader(data), sigR, cfg)
	if err != nil {
		if errors.Is(err, pgperrors.ErrUnknownIssuer) {
			return time.Time{}, fmt.Errorf("%w: not made by key %s", ErrBadSignature, p.Fingerprint)
		}
		return time.Time{}, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return s.CreationTime, nil
}

// Fingerprints returns the fingerprints of p's primary key and of its
// subkeys, in key order, uppercase hex.
func (p *Public) Fingerprints() []string {
	out := []string{p.Fingerprint}
	for _, sk := range p.entity.Subkeys {
		out = append(out, fingerprint(sk.PublicKey))
	}
	return out
}

// Fingerprints returns the fingerprints of the one public key in armored
// (its primary key's, then its subkeys'; see Public.Fingerprints).
func Fingerprints(armored string) ([]string, error) {
	p, err := ParsePublicOne([]byte(armored))
	if err != nil {
		return nil, err
	}
	return p.Fingerprints(), nil
}

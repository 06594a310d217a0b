package keys

import (
	"bytes"
	"crypto"
	"fmt"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Verifier checks many binary detached signatures by one key quickly: the
// key and its self-signatures are validated once, by NewVerifier, instead
// of once per signature as a full OpenPGP verification does. It is what
// ledger verification uses; it is safe for concurrent use.
type Verifier struct {
	fpr     string
	signers []*packet.PublicKey // the primary key and the signing subkeys valid when made
}

// NewVerifier validates p at now and returns a Verifier for its signatures.
func (p *Public) NewVerifier(now time.Time) (*Verifier, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	resetValidity(p.entity)
	p.checkedAt = time.Time{}
	cfg := checkConfig(now)
	if _, err := p.entity.VerifyPrimaryKey(now, cfg); err != nil {
		return nil, fmt.Errorf("key %s: %w", p.Fingerprint, err)
	}
	v := &Verifier{fpr: p.Fingerprint, signers: []*packet.PublicKey{p.entity.PrimaryKey}}
	for _, sk := range p.entity.Subkeys {
		sig, err := sk.LatestValidBindingSignature(now, cfg)
		if err == nil && sig.FlagsValid && sig.FlagSign {
			v.signers = append(v.signers, sk.PublicKey)
		}
	}
	return v, nil
}

// Verify checks a binary detached signature (type 0x00, SHA-256 or
// stronger) over data. Errors wrap ErrBadSignature.
func (v *Verifier) Verify(data, sig []byte) error {
	if len(sig) > MaxSignatureBytes {
		return fmt.Errorf("%w: signature of %d bytes", ErrBadSignature, len(sig))
	}
	r := bytes.NewReader(sig)
	pkt, err := packet.Read(r)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if r.Len() != 0 {
		return fmt.Errorf("%w: trailing data after the signature", ErrBadSignature)
	}
	s, ok := pkt.(*packet.Signature)
	if !ok {
		return fmt.Errorf("%w: not a signature packet", ErrBadSignature)
	}
	if s.SigType != packet.SigTypeBinary {
		return fmt.Errorf("%w: signature type %#x, want binary (0x00)", ErrBadSignature, s.SigType)
	}
	switch s.Hash {
	case crypto.SHA256, crypto.SHA384, crypto.SHA512, crypto.SHA3_256, crypto.SHA3_512:
	default:
		return fmt.Errorf("%w: weak or unknown hash %v", ErrBadSignature, s.Hash)
	}
	for _, pk := range v.signers {
		if !s.CheckKeyIdOrFingerprint(pk) {
			continue
		}
		h, err := s.PrepareVerify()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadSignature, err)
		}
		h.Write(data)
		if err := pk.VerifySignature(h, s); err != nil {
			return fmt.Errorf("%w: %v", ErrBadSignature, err)
		}
		return nil
	}
	return fmt.Errorf("%w: not made by key %s", ErrBadSignature, v.fpr)
}

package keys

import (
	"bytes"
	"fmt"
	"time"

	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// RevocationCertificate returns a revocation certificate for the key,
// dated at: one key revocation signature (reason: none given, as gpg
// makes the one it keeps in openpgp-revocs.d), armored as a PUBLIC KEY
// BLOCK, as `gpg --gen-revoke` writes it. Whoever holds it can revoke
// the key without its secret part (gpg --import), so it is made once,
// when the key is, and kept offline: it is the way out if the secret key
// is lost or stolen with its passphrase.
func (s *Secret) RevocationCertificate(at time.Time) ([]byte, error) {
	if at.IsZero() {
		at = s.now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pk := s.entity.PrimaryKey
	sig := newSelfSig(pk, packet.SigTypeKeyRevocation, at.Truncate(time.Second))
	reason := packet.NoReason
	sig.RevocationReason = &reason
	sig.RevocationReasonText = "revocation certificate made with the key; used only if the key is lost or compromised"
	if err := sig.RevokeKey(pk, s.entity.PrivateKey, &packet.Config{DefaultHash: SignatureHash, Time: func() time.Time { return at }}); err != nil {
		return nil, fmt.Errorf("revocation certificate of key %s: %w", s.Fingerprint(), err)
	}
	var bin bytes.Buffer
	if err := sig.Serialize(&bin); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	w, err := armor.Encode(&out, openpgp.PublicKeyType, map[string]string{
		"Comment": "revocation certificate of " + s.Fingerprint() + ": importing it revokes the key",
	})
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(bin.Bytes()); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

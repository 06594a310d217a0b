package keys

import (
	"crypto"
	"errors"
	"fmt"
	"strings"
	"time"

	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// ErrUnsupportedKey: a key algorithm or curve ccdir cannot use at all,
// whatever its size: DSA and ElGamal (deprecated by RFC 9580), curves
// outside OpenPGP's (secp256k1): unsupported, not weak. go-crypto, which ccdir signs, encrypts
// and verifies with, refuses them.
var ErrUnsupportedKey = errors.New("unsupported key algorithm")

// NewKeyAdvice is how a contact whose key's algorithm is refused makes
// one ccdir takes.
const NewKeyAdvice = "make an Ed25519 key (gpg --quick-gen-key 'Name <email>' future-default) or an RSA key of 3072 bits (rsa3072), and send it"

// refusedAlgorithm says why go-crypto's policy refused the key pk
// (weak, its WeakAlgorithmError, whose text for an algorithm is a raw
// byte): the sentinel (ErrWeakKey for a size below the minimum,
// ErrUnsupportedKey for an algorithm or curve never accepted) and the
// reason in words, naming the algorithm as gpg does.
func refusedAlgorithm(pk *packet.PublicKey, weak pgperrors.WeakAlgorithmError) (error, string) {
	if pk == nil {
		return ErrWeakKey, printableWeak(weak)
	}
	name := algorithmName(pk)
	switch pk.PubKeyAlgo {
	case packet.PubKeyAlgoRSA, packet.PubKeyAlgoRSASignOnly, packet.PubKeyAlgoRSAEncryptOnly:
		if bits, err := pk.BitLength(); err == nil {
			return ErrWeakKey, fmt.Sprintf("RSA %d bits, at least %d required", bits, MinRSABits)
		}
	case packet.PubKeyAlgoDSA:
		return ErrUnsupportedKey, fmt.Sprintf("DSA (%s), a signature algorithm OpenPGP deprecated on security grounds (RFC 9580 §12.5: no new DSA keys), which ccdir does not accept", name)
	case packet.PubKeyAlgoElGamal, 20: // 20: ElGamal sign and encrypt, long withdrawn
		return ErrUnsupportedKey, fmt.Sprintf("ElGamal (%s), an encryption algorithm OpenPGP deprecated on security grounds (RFC 9580 §12.6: no new ElGamal keys), which ccdir does not encrypt to", name)
	case packet.PubKeyAlgoECDH, packet.PubKeyAlgoEdDSA, packet.PubKeyAlgoECDSA:
		if curve, err := pk.Curve(); err == nil {
			if curve == packet.CurveSecP256k1 {
				return ErrUnsupportedKey, fmt.Sprintf("curve secp256k1, which is not one of OpenPGP's (RFC 9580 §9.2: NIST P-256, P-384, P-521, Brainpool P-256, P-384, P-512, Curve25519; §9.1: X25519, X448, Ed25519, Ed448): ccdir does not support it")
			}
			return ErrUnsupportedKey, fmt.Sprintf("curve %s, which ccdir does not accept", curve)
		}
	}
	return ErrUnsupportedKey, fmt.Sprintf("%s: %s", name, printableWeak(weak))
}

// printableWeak is go-crypto's text of weak with its raw algorithm byte
// given as a number.
func printableWeak(weak pgperrors.WeakAlgorithmError) string {
	s := string(weak)
	if rest, ok := strings.CutPrefix(s, "public key algorithm "); ok && len(rest) == 1 {
		return fmt.Sprintf("public key algorithm %d", rest[0])
	}
	return s
}

// RefusedHash reports whether h is a hash a message signature may not
// use (go-crypto's policy, which VerifyAt applies: SHA-1, MD5,
// RIPEMD-160), known from the signature packet before any key is looked
// up.
func RefusedHash(h crypto.Hash) bool {
	return (&packet.Config{}).RejectMessageHashAlgorithm(h)
}

// VerifyRefusedHashAt checks a detached signature made by this key over
// data with a hash VerifyAt refuses (RefusedHash: SHA-1 only; MD5 and
// RIPEMD-160 stay refused), so that its signer can be told, privately,
// to sign with SHA-256. It never makes a signature acceptable: it only
// says who made it. Errors wrap ErrBadSignature.
func (p *Public) VerifyRefusedHashAt(data, sig []byte, now time.Time) error {
	cfg := checkConfig(now)
	cfg.RejectMessageHashAlgorithms = map[crypto.Hash]bool{crypto.MD5: true, crypto.RIPEMD160: true}
	_, err := p.verifyAt(data, sig, cfg)
	return err
}

package pgpmime

import (
	"bytes"
	crand "crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/ccdir/ccdir/keys"
)

// Recipient is the key a copy is encrypted to: the encryption (sub)key of
// a public key that is valid at a given time, and the cipher the key
// accepts. It holds that one key packet, not the parsed certificate, so
// that thousands of recipients can be kept ready for a send in little
// memory. A Recipient is read-only and safe for concurrent use.
type Recipient struct {
	Fingerprint string // of the primary key
	key         *packet.PublicKey
	cipher      packet.CipherFunction
}

// NewRecipient chooses pub's encryption key as it is valid at now
// (go-crypto's EncryptionKey: the newest valid encryption subkey, else
// the primary key if it may encrypt), under keys.MinRSABits. Errors wrap
// keys.ErrNoEncryptionKey or keys.ErrWeakKey.
//
// go-crypto caches the validity of self-signatures inside the key, so
// calls for the same pub are serialised; do not run keys.Public methods
// (Check, Verify) on pub while another goroutine calls NewRecipient with
// it.
func NewRecipient(pub *keys.Public, now time.Time) (*Recipient, error) {
	cfg := &packet.Config{MinRSABits: keys.MinRSABits, Time: func() time.Time { return now }}
	mu := lockFor(pub)
	mu.Lock()
	key, err := pub.Entity().EncryptionKeyWithError(now, cfg)
	mu.Unlock()
	if err != nil {
		var weak pgperrors.WeakAlgorithmError
		if errors.As(err, &weak) {
			return nil, fmt.Errorf("%w: key %s: %v", keys.ErrWeakKey, pub.Fingerprint, err)
		}
		return nil, fmt.Errorf("%w: key %s: %v", keys.ErrNoEncryptionKey, pub.Fingerprint, err)
	}
	// AES-256 unless the key says it takes AES-128 and not AES-256.
	cipher := packet.CipherAES256
	if sig := key.PrimarySelfSignature; sig != nil && len(sig.PreferredSymmetric) > 0 &&
		!slices.Contains(sig.PreferredSymmetric, uint8(packet.CipherAES256)) &&
		slices.Contains(sig.PreferredSymmetric, uint8(packet.CipherAES128)) {
		cipher = packet.CipherAES128
	}
	return &Recipient{Fingerprint: pub.Fingerprint, key: key.PublicKey, cipher: cipher}, nil
}

// Sealed is a Signed entity encrypted once, for many recipients: one
// session key and one SEIPDv1 packet (per cipher that recipients need,
// in practice AES-256 only) are shared by every copy, and each copy adds
// only its own PKESK packet, made with the recipient's key. It is what
// gpg does for one message with many -r, split into one mail per
// recipient, none of which names the other recipients.
//
// Every recipient receives the same plaintext, so sharing the session key
// gives nobody anything they were not sent. The encrypted packet is held
// in memory, already armored, as Shared parts that the copies point to;
// the outbox stores each part once.
//
// A Sealed is safe for concurrent use.
type Sealed struct {
	e    *Encrypter
	rand io.Reader

	mu     sync.Mutex
	seals  map[packet.CipherFunction]*seal
	shared [][]byte // armored parts, numbered by Copy.Shared
}

// seal is the payload encrypted under one session key.
type seal struct {
	cipher packet.CipherFunction
	key    []byte
	body   []byte // the whole SEIPDv1 packet
	crc    uint32 // CRC-24 of body from a zero register
	shift  uint32 // x^(8·len(body)) mod the CRC-24 polynomial
	part   [3]int // index in Sealed.shared of the armor of body[k:]
}

// Seal returns a Sealed for e's entity. The session keys and SEIPD
// packets are made on first use; rand (nil: crypto/rand) must be safe for
// concurrent use.
func (e *Encrypter) Seal(rand io.Reader) *Sealed {
	if rand == nil {
		rand = crand.Reader
	}
	return &Sealed{e: e, rand: rand, seals: map[packet.CipherFunction]*seal{}}
}

// sealFor returns the seal for cipher c, making it the first time.
func (s *Sealed) sealFor(c packet.CipherFunction) (*seal, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sl := s.seals[c]; sl != nil {
		return sl, nil
	}
	key := make([]byte, c.KeySize())
	if _, err := io.ReadFull(s.rand, key); err != nil {
		return nil, err
	}
	var body bytes.Buffer
	body.Grow(len(s.e.payload) + 64)
	if err := appendSEIPDv1(&body, c, key, s.e.payload, s.rand); err != nil {
		return nil, err
	}
	sl := &seal{cipher: c, key: key, body: body.Bytes()}
	sl.crc = crc24(0, sl.body)
	sl.shift = crc24XPow8(len(sl.body))
	for k := range sl.part {
		sl.part[k] = len(s.shared)
		s.shared = append(s.shared, armorLines(sl.body[k:]))
	}
	s.seals[c] = sl
	return sl, nil
}

// Shared returns the shared part numbered i (see Copy). The bytes are
// shared: do not modify them.
func (s *Sealed) Shared(i int) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shared[i]
}

// Copy is one recipient's mail: Head, then the Sealed's shared part
// numbered Shared, then Tail. Head holds the outer headers, the MIME
// framing and the start of the armor (with the recipient's PKESK); the
// shared part continues the armor with the encrypted entity; Tail ends the
// armor (CRC-24 line) and the MIME body.
type Copy struct {
	Head   []byte
	Shared int
	Tail   []byte
}

// Bytes returns the whole mail of c.
func (s *Sealed) Bytes(c Copy) []byte {
	shared := s.Shared(c.Shared)
	out := make([]byte, 0, len(c.Head)+len(shared)+len(c.Tail))
	return append(append(append(out, c.Head...), shared...), c.Tail...)
}

// Copy makes r's mail with the outer headers o: a multipart/encrypted
// message exactly as BuildEncrypted writes it, except that the armor lines
// break where the per-recipient bytes end (one line is shorter than 64
// characters; RFC 4880 §6.3 only bounds line length). rand (nil:
// crypto/rand) feeds the PKESK and must be safe for concurrent use.
func (s *Sealed) Copy(r *Recipient, o Outer, rand io.Reader) (Copy, error) {
	if rand == nil {
		rand = crand.Reader
	}
	sl, err := s.sealFor(r.cipher)
	if err != nil {
		return Copy{}, err
	}
	cfg := &packet.Config{Rand: rand, Time: s.e.cfg.Time, DefaultCipher: sl.cipher}
	var pkesk bytes.Buffer
	if err := packet.SerializeEncryptedKeyAEAD(&pkesk, r.key, sl.cipher, false, sl.key, cfg); err != nil {
		return Copy{}, fmt.Errorf("encrypt session key to %s: %w", r.Fingerprint, err)
	}
	// The armor's base64 runs across the PKESK and the shared packet: the
	// head carries the PKESK's whole 3-byte groups plus, when its length
	// is not a multiple of 3, one group completed with the first bytes of
	// the packet; the shared part for the rest starts at body[k].
	prefix := pkesk.Bytes()
	k := (3 - len(prefix)%3) % 3
	group := append(prefix[:len(prefix):len(prefix)], sl.body[:k]...)
	crc := crc24Combine(crc24(crc24Init, prefix), sl.crc, sl.shift)

	var asc bytes.Buffer
	asc.WriteString("-----BEGIN PGP MESSAGE-----\r\n\r\n")
	asc.Write(armorLines(group))
	bnd := boundary("encrypted", asc.Bytes(), []byte(fmt.Sprint(len(sl.body))))

	var head bytes.Buffer
	head.Grow(asc.Len() + 2048)
	if err := writeEncryptedHead(&head, o, bnd); err != nil {
		return Copy{}, err
	}
	head.Write(asc.Bytes())
	var tail bytes.Buffer
	writeArmorEnd(&tail, "PGP MESSAGE", crc)
	tail.WriteString("\r\n--" + bnd + "--\r\n")
	return Copy{Head: head.Bytes(), Shared: sl.part[k], Tail: tail.Bytes()}, nil
}

// armorLines is the base64 of bin in lines of 64 characters (the last
// may be shorter), each ending in CRLF.
func armorLines(bin []byte) []byte {
	const chunk = 48 // 64 characters
	n := base64.StdEncoding.EncodedLen(len(bin))
	out := make([]byte, 0, n+2*(len(bin)/chunk+1))
	var line [64]byte
	for len(bin) > 0 {
		m := min(chunk, len(bin))
		base64.StdEncoding.Encode(line[:], bin[:m])
		out = append(out, line[:base64.StdEncoding.EncodedLen(m)]...)
		out = append(out, '\r', '\n')
		bin = bin[m:]
	}
	return out
}

// writeArmorEnd writes the CRC-24 line and the END line of an armor.
func writeArmorEnd(out *bytes.Buffer, blockType string, crc uint32) {
	var enc [4]byte
	sum := [3]byte{byte(crc >> 16), byte(crc >> 8), byte(crc)}
	base64.StdEncoding.Encode(enc[:], sum[:])
	out.WriteByte('=')
	out.Write(enc[:])
	out.WriteString("\r\n-----END " + blockType + "-----\r\n")
}

// The CRC-24 is linear: the CRC of a‖b from register r is the CRC of b
// from a zero register, XOR the CRC of len(b) zero bytes from the
// register reached after a, and running zero bytes through the register
// multiplies it by x^8 modulo the polynomial. So the checksum of a copy
// costs one multiplication instead of a pass over the shared packet.

// crc24MulMod returns a·b modulo the CRC-24 polynomial, over GF(2).
func crc24MulMod(a, b uint32) uint32 {
	var r uint32
	for i := 23; i >= 0; i-- {
		r <<= 1
		if r&(1<<24) != 0 {
			r ^= crc24Poly
		}
		if b>>i&1 != 0 {
			r ^= a
		}
	}
	return r & 0xffffff
}

// crc24XPow8 returns x^(8n) modulo the CRC-24 polynomial.
func crc24XPow8(n int) uint32 {
	result := uint32(1)
	base := uint32(1 << 8) // x^8
	for e := n; e > 0; e >>= 1 {
		if e&1 != 0 {
			result = crc24MulMod(result, base)
		}
		base = crc24MulMod(base, base)
	}
	return result
}

// crc24Combine returns the CRC-24 of a‖b from the register crcA reached
// after a, given crcB, the CRC-24 of b from a zero register, and shift,
// crc24XPow8(len(b)).
func crc24Combine(crcA, crcB, shift uint32) uint32 {
	return crc24MulMod(crcA, shift) ^ crcB
}

package pgpmime

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	crand "crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"io"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/ccdir/ccdir/keys"
)

// Encrypter encrypts one Signed entity to many recipients. NewEncrypter
// builds the literal data packet and compresses it (ZLIB) once. Seal then
// encrypts it once for copies to many recipients (see Sealed); Encrypt
// makes one complete message for one recipient: a session key, the PKESK
// packet for the recipient's current encryption key, the SEIPDv1 packet
// (AES-256, MDC) over the precompressed bytes, and the armor (with
// CRC-24).
//
// An Encrypter is safe for concurrent use. go-crypto caches the validity of
// self-signatures inside a key, so Encrypt serialises calls for the same
// recipient key; do not run keys.Public methods (Check, Verify) on a key
// while another goroutine encrypts to it.
type Encrypter struct {
	payload []byte // compressed data packet holding the literal data packet
	now     time.Time
	cfg     *packet.Config // key selection policy; shared, read-only
}

// NewEncrypter compresses s once. Recipient keys are chosen as they are
// valid at now, which also dates the literal data packet.
func NewEncrypter(s *Signed, now time.Time) (*Encrypter, error) {
	if s == nil || len(s.entity) == 0 {
		return nil, fmt.Errorf("%w: empty signed entity", ErrEntity)
	}
	var buf bytes.Buffer
	buf.Grow(len(s.entity) / 3)
	cw, err := packet.SerializeCompressed(nopCloser{&buf}, packet.CompressionZLIB,
		&packet.CompressionConfig{Level: 6})
	if err != nil {
		return nil, err
	}
	lw, err := packet.SerializeLiteral(cw, true, "", uint32(now.Unix()))
	if err != nil {
		return nil, err
	}
	if _, err := lw.Write(s.entity); err != nil {
		return nil, err
	}
	if err := lw.Close(); err != nil { // closes cw too
		return nil, err
	}
	return &Encrypter{
		payload: buf.Bytes(),
		now:     now,
		cfg:     &packet.Config{MinRSABits: keys.MinRSABits, Time: func() time.Time { return now }},
	}, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// recipientLocks serialise go-crypto's validity caching per recipient key.
var (
	recipientLocks [64]sync.Mutex
	lockSeed       = maphash.MakeSeed()
)

func lockFor(p *keys.Public) *sync.Mutex {
	return &recipientLocks[maphash.String(lockSeed, p.Fingerprint)%uint64(len(recipientLocks))]
}

var binPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Encrypt writes an armored OpenPGP message (CRLF line endings, CRC-24 line)
// holding the signed entity, encrypted to rcpt's encryption key that is
// current at the Encrypter's time (go-crypto's EncryptionKey: the newest
// valid encryption subkey, else the primary key if it may encrypt). rand
// may be nil for crypto/rand. Errors about the key wrap
// keys.ErrNoEncryptionKey (or keys.ErrWeakKey).
func (e *Encrypter) Encrypt(w io.Writer, rcpt *keys.Public, rand io.Reader) error {
	if rand == nil {
		rand = crand.Reader
	}
	r, err := NewRecipient(rcpt, e.now)
	if err != nil {
		return err
	}
	cfg := &packet.Config{Rand: rand, Time: e.cfg.Time, DefaultCipher: r.cipher}
	var sessionKey [32]byte
	sk := sessionKey[:r.cipher.KeySize()]
	defer clear(sessionKey[:])
	if _, err := io.ReadFull(rand, sk); err != nil {
		return err
	}

	bin := binPool.Get().(*bytes.Buffer)
	defer binPool.Put(bin)
	bin.Reset()
	bin.Grow(len(e.payload) + 1024)
	if err := packet.SerializeEncryptedKeyAEAD(bin, r.key, r.cipher, false, sk, cfg); err != nil {
		return fmt.Errorf("encrypt session key to %s: %w", rcpt.Fingerprint, err)
	}
	if err := appendSEIPDv1(bin, r.cipher, sk, e.payload, rand); err != nil {
		return err
	}

	out := binPool.Get().(*bytes.Buffer)
	defer binPool.Put(out)
	out.Reset()
	appendArmor(out, "PGP MESSAGE", bin.Bytes())
	_, err = w.Write(out.Bytes())
	return err
}

// appendSEIPDv1 writes a Symmetrically Encrypted Integrity Protected Data
// packet, version 1 (RFC 4880 §5.13, RFC 9580 §5.13.1), over plaintext:
// OpenPGP CFB without resynchronisation, which is plain CFB with an
// all-zero IV, over a random block-sized prefix with its last two bytes
// repeated, the plaintext, and the MDC packet (0xD3 0x14 and the SHA-1 of
// everything before its hash). go-crypto's writer does the same through a
// byte-at-a-time CFB; the standard library's is about three times faster,
// and the packet length is known, so it is written as one fixed-length
// packet.
func appendSEIPDv1(out *bytes.Buffer, c packet.CipherFunction, key, plaintext []byte, rand io.Reader) error {
	block, err := aes.NewCipher(key)
	if err != nil {
		return err
	}
	if c != packet.CipherAES128 && c != packet.CipherAES256 || len(key) != c.KeySize() {
		return fmt.Errorf("unsupported cipher %v", c)
	}
	const bs = aes.BlockSize
	var prefix [bs + 2]byte
	if _, err := io.ReadFull(rand, prefix[:bs]); err != nil {
		return err
	}
	prefix[bs], prefix[bs+1] = prefix[bs-2], prefix[bs-1]
	mdcHeader := [2]byte{0xd3, 0x14}
	h := sha1.New()
	h.Write(prefix[:])
	h.Write(plaintext)
	h.Write(mdcHeader[:])
	var mdc [sha1.Size]byte
	h.Sum(mdc[:0])

	bodyLen := 1 + len(prefix) + len(plaintext) + len(mdcHeader) + len(mdc)
	out.WriteByte(0xc0 | 18) // new format, tag 18
	switch {
	case bodyLen < 192:
		out.WriteByte(byte(bodyLen))
	case bodyLen < 8384:
		n := bodyLen - 192
		out.WriteByte(byte(n>>8) + 192)
		out.WriteByte(byte(n))
	default:
		out.WriteByte(0xff)
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(bodyLen))
		out.Write(l[:])
	}
	out.WriteByte(1) // version
	start := out.Len()
	out.Write(prefix[:])
	out.Write(plaintext)
	out.Write(mdcHeader[:])
	out.Write(mdc[:])
	enc := out.Bytes()[start:]
	var iv [bs]byte
	//lint:ignore SA1019 OpenPGP SEIPDv1 is CFB; integrity comes from the MDC.
	cipher.NewCFBEncrypter(block, iv[:]).XORKeyStream(enc, enc)
	return nil
}

// appendArmor writes bin as an ASCII armor block (RFC 4880 §6.2) with CRLF
// line endings (as mail needs them), 64 characters per line, no armor headers, and the CRC-24
// checksum line that GnuPG 2.2 needs.
func appendArmor(out *bytes.Buffer, blockType string, bin []byte) {
	out.WriteString("-----BEGIN " + blockType + "-----\r\n\r\n")
	out.Write(armorLines(bin))
	writeArmorEnd(out, blockType, crc24(crc24Init, bin))
}

const (
	crc24Init = 0xb704ce
	crc24Poly = 0x1864cfb
)

// crc24Tables are slicing-by-8 tables for the CRC-24 held in the top 24
// bits of a uint32: crc24Tables[0] advances the CRC by one byte,
// crc24Tables[k] by one byte followed by k zero bytes.
var crc24Tables = func() (t [8][256]uint32) {
	const poly = (crc24Poly & 0xffffff) << 8
	for i := range 256 {
		v := uint32(i) << 24
		for range 8 {
			if v&0x80000000 != 0 {
				v = v<<1 ^ poly
			} else {
				v <<= 1
			}
		}
		t[0][i] = v
	}
	for k := 1; k < 8; k++ {
		for i := range 256 {
			v := t[k-1][i]
			t[k][i] = v<<8 ^ t[0][v>>24]
		}
	}
	return t
}()

// crc24 is the OpenPGP armor checksum (RFC 4880 §6.1), eight bytes per
// step (go-crypto's is bit by bit; the armor is written for every
// recipient, so this matters).
func crc24(crc uint32, data []byte) uint32 {
	t := &crc24Tables
	c := crc << 8
	for len(data) >= 8 {
		x := c ^ binary.BigEndian.Uint32(data)
		y := binary.BigEndian.Uint32(data[4:])
		c = t[7][x>>24] ^ t[6][x>>16&0xff] ^ t[5][x>>8&0xff] ^ t[4][x&0xff] ^
			t[3][y>>24] ^ t[2][y>>16&0xff] ^ t[1][y>>8&0xff] ^ t[0][y&0xff]
		data = data[8:]
	}
	for _, b := range data {
		c = c<<8 ^ t[0][byte(c>>24)^b]
	}
	return c >> 8
}

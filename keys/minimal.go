package keys

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// The unhashed subpackets a stored signature keeps (RFC 9580 §5.2.3.7):
// the unhashed area is not signed, so anyone on the way can add to it,
// and go-crypto keeps and writes back what it does not know. Only these
// three are of use to a reader of a key.
const (
	subIssuerKeyID   = 16
	subEmbeddedSig   = 32 // the back-signature of a signing subkey
	subIssuerFingerp = 33
)

// minimalSig returns the signature packet of s with only the unhashed
// subpackets that matter (issuer key ID, issuer fingerprint, embedded
// back-signature, itself minimal), and its identity: the signature
// without its unhashed area (the signed data and the signature value),
// so that two copies of one signature are the same whatever was added
// to them on the way. A signature with nothing to drop is written as
// go-crypto writes it.
func minimalSig(s *packet.Signature) (pkt []byte, id string, err error) {
	var buf bytes.Buffer
	if err := s.Serialize(&buf); err != nil {
		return nil, "", err
	}
	raw := buf.Bytes()
	body, err := packetBody(raw)
	if err != nil {
		return nil, "", err
	}
	trimmed, ident, err := trimSigBody(body, true)
	if err != nil {
		return nil, "", err
	}
	if len(trimmed) == len(body) {
		return raw, string(ident), nil
	}
	var out bytes.Buffer
	out.WriteByte(0xc0 | 2) // new-format signature packet
	writeLength(&out, len(trimmed))
	out.Write(trimmed)
	return out.Bytes(), string(ident), nil
}

// sigID is the identity of s (minimalSig), or "" if it cannot be written.
func sigID(s *packet.Signature) string {
	_, id, err := minimalSig(s)
	if err != nil {
		return ""
	}
	return id
}

// packetBody returns the body of the one new-format packet in raw (what
// go-crypto's Serialize writes).
func packetBody(raw []byte) ([]byte, error) {
	if len(raw) < 2 || raw[0]&0xc0 != 0xc0 {
		return nil, errors.New("signature: not a new-format packet")
	}
	var n, hdr int
	switch l := int(raw[1]); {
	case l < 192:
		n, hdr = l, 2
	case l < 224:
		if len(raw) < 3 {
			return nil, errors.New("signature: truncated header")
		}
		n, hdr = (l-192)<<8+int(raw[2])+192, 3
	case l == 255:
		if len(raw) < 6 {
			return nil, errors.New("signature: truncated header")
		}
		n, hdr = int(raw[2])<<24|int(raw[3])<<16|int(raw[4])<<8|int(raw[5]), 6
	default:
		return nil, errors.New("signature: partial length")
	}
	if hdr+n != len(raw) {
		return nil, errors.New("signature: length does not match")
	}
	return raw[hdr:], nil
}

func writeLength(w io.ByteWriter, n int) {
	switch {
	case n < 192:
		w.WriteByte(byte(n))
	case n < 8384:
		n -= 192
		w.WriteByte(byte(192 + n>>8))
		w.WriteByte(byte(n))
	default:
		w.WriteByte(255)
		w.WriteByte(byte(n >> 24))
		w.WriteByte(byte(n >> 16))
		w.WriteByte(byte(n >> 8))
		w.WriteByte(byte(n))
	}
}

// trimSigBody returns the signature packet body with the unhashed
// subpackets minimalSig keeps (an embedded signature only if
// allowEmbedded, trimmed in turn), and the body without its unhashed
// area.
func trimSigBody(body []byte, allowEmbedded bool) (trimmed, ident []byte, err error) {
	if len(body) < 1 {
		return nil, nil, errors.New("signature: empty")
	}
	lenBytes := 2 // versions 4 and 5
	switch body[0] {
	case 4, 5:
	case 6:
		lenBytes = 4
	default:
		return nil, nil, fmt.Errorf("signature: version %d", body[0])
	}
	readLen := func(at int) (int, error) {
		if at+lenBytes > len(body) {
			return 0, errors.New("signature: truncated")
		}
		n := 0
		for _, b := range body[at : at+lenBytes] {
			n = n<<8 | int(b)
		}
		return n, nil
	}
	hl, err := readLen(4)
	if err != nil {
		return nil, nil, err
	}
	uo := 4 + lenBytes + hl // the unhashed area's length field
	ul, err := readLen(uo)
	if err != nil {
		return nil, nil, err
	}
	start, end := uo+lenBytes, uo+lenBytes+ul
	if end > len(body) {
		return nil, nil, errors.New("signature: truncated unhashed area")
	}
	var kept []byte
	for rest := body[start:end]; len(rest) > 0; {
		var n, hdr int
		switch l := int(rest[0]); {
		case l < 192:
			n, hdr = l, 1
		case l < 255:
			if len(rest) < 2 {
				return nil, nil, errors.New("signature: truncated subpacket")
			}
			n, hdr = (l-192)<<8+int(rest[1])+192, 2
		default:
			if len(rest) < 5 {
				return nil, nil, errors.New("signature: truncated subpacket")
			}
			n, hdr = int(rest[1])<<24|int(rest[2])<<16|int(rest[3])<<8|int(rest[4]), 5
		}
		if n < 1 || n > len(rest)-hdr {
			return nil, nil, errors.New("signature: bad subpacket length")
		}
		sp := rest[:hdr+n]
		rest = rest[hdr+n:]
		switch sp[hdr] & 0x7f {
		case subIssuerKeyID, subIssuerFingerp:
			kept = append(kept, sp...)
		case subEmbeddedSig:
			if !allowEmbedded {
				continue
			}
			inner, _, err := trimSigBody(sp[hdr+1:], false)
			if err != nil {
				return nil, nil, fmt.Errorf("embedded %w", err)
			}
			if len(inner) == n-1 {
				kept = append(kept, sp...)
				continue
			}
			var b bytes.Buffer
			writeSubpacketLength(&b, len(inner)+1)
			b.WriteByte(sp[hdr])
			b.Write(inner)
			kept = append(kept, b.Bytes()...)
		}
	}
	ident = append(append([]byte{}, body[:uo]...), body[end:]...)
	if len(kept) == ul {
		return body, ident, nil
	}
	trimmed = append([]byte{}, body[:uo]...)
	for i := lenBytes - 1; i >= 0; i-- {
		trimmed = append(trimmed, byte(len(kept)>>(8*i)))
	}
	trimmed = append(append(trimmed, kept...), body[end:]...)
	return trimmed, ident, nil
}

// writeSubpacketLength writes a signature subpacket length (RFC 9580
// §5.2.3.7), which differs from a packet length in its 2-octet range.
func writeSubpacketLength(w io.ByteWriter, n int) {
	switch {
	case n < 192:
		w.WriteByte(byte(n))
	case n < 16320:
		n -= 192
		w.WriteByte(byte(192 + n>>8))
		w.WriteByte(byte(n))
	default:
		w.WriteByte(255)
		w.WriteByte(byte(n >> 24))
		w.WriteByte(byte(n >> 16))
		w.WriteByte(byte(n >> 8))
		w.WriteByte(byte(n))
	}
}

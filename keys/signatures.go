package keys

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// MaxSignatures is the most signatures one detached signature block may
// hold (SplitSignatures): a message signed by its author's old and new
// keys has two.
const MaxSignatures = 4

// SplitSignatures returns, in order and binary, each signature packet of
// a detached signature block (armored or binary). go-crypto judges a
// block of several signatures good as soon as any one of them verifies
// (its SignatureError is nil then), whoever made the others: what needs
// to know who signed checks each on its own, and VerifyAt takes exactly
// one. A block with anything but signature packets, none, or more than
// MaxSignatures is refused.
func SplitSignatures(sig []byte) ([][]byte, error) {
	if len(sig) > MaxSignatureBytes {
		return nil, fmt.Errorf("signature of %d bytes, at most %d allowed", len(sig), MaxSignatureBytes)
	}
	bin := sig
	if t := bytes.TrimLeft(sig, " \t\r\n"); len(t) > 0 && t[0]&0x80 == 0 {
		blk, err := armor.Decode(bytes.NewReader(t))
		if err != nil {
			return nil, err
		}
		if blk.Type != openpgp.SignatureType {
			return nil, fmt.Errorf("armor block is %q, not a signature", blk.Type)
		}
		if bin, err = io.ReadAll(io.LimitReader(blk.Body, MaxSignatureBytes+1)); err != nil {
			return nil, err
		}
		if len(bin) > MaxSignatureBytes {
			return nil, fmt.Errorf("signature over %d bytes", MaxSignatureBytes)
		}
	}
	var out [][]byte
	r := bytes.NewReader(bin)
	for r.Len() > 0 {
		if len(out) == MaxSignatures {
			return nil, fmt.Errorf("more than %d signatures in one block", MaxSignatures)
		}
		start := len(bin) - r.Len()
		p, err := packet.Read(r)
		if err != nil {
			return nil, err
		}
		if _, ok := p.(*packet.Signature); !ok {
			return nil, fmt.Errorf("a %T packet where signatures were expected", p)
		}
		out = append(out, bin[start:len(bin)-r.Len()])
	}
	if len(out) == 0 {
		return nil, errors.New("no signature")
	}
	return out, nil
}

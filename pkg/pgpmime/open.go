package pgpmime

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"sync"
	"time"

	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"github.com/ccdir/ccdir/keys"
)

// Default limits for Open.
const (
	DefaultMaxMessageBytes   = 32 << 20
	DefaultMaxDecryptedBytes = MaxEntityBytes
)

// OpenOptions configure Open. The zero value means the defaults.
type OpenOptions struct {
	// MaxMessageBytes caps the whole message read from r
	// (default DefaultMaxMessageBytes).
	MaxMessageBytes int64
	// MaxDecryptedBytes caps the decrypted, decompressed content
	// (default DefaultMaxDecryptedBytes); it also sets go-crypto's
	// MaxDecompressedMessageSize against compression bombs.
	MaxDecryptedBytes int64
	// Keyring holds the keys whose signatures inside the OpenPGP message
	// (a combined signed and encrypted message, RFC 3156 §6.2) are
	// checked. Signatures in a multipart/signed entity inside are not
	// checked by Open: use Verify on Opened.Entity.
	Keyring []*keys.Public
	// Now is the time for key and signature checks (zero: time.Now).
	Now time.Time
}

var openMu sync.Mutex

// Opened is the result of Open.
type Opened struct {
	// Entity is the decrypted MIME entity, as the sender encrypted it; for
	// a message that is not multipart/encrypted, the whole message.
	Entity []byte
	// Encrypted reports whether the message was a multipart/encrypted
	// message that was decrypted.
	Encrypted bool
	// Signed reports whether the OpenPGP message itself carried a
	// signature (RFC 3156 §6.2). If it did, either Signer is the
	// fingerprint of the keyring key that made it and SignedAt its time,
	// or SignatureErr (wrapping ErrBadSignature) says why it did not
	// verify.
	Signed       bool
	Signer       string
	SignedAt     time.Time
	SignatureErr error
}

// Open reads a message from r and, if it is multipart/encrypted
// (RFC 3156 §4), decrypts it with dir (the directory's own key). A message
// that is not multipart/encrypted is returned whole with Encrypted false.
// Errors wrap ErrTooLarge, ErrMalformed or ErrDecrypt.
//
// Open may be called from several goroutines (they are serialised while
// decrypting, because go-crypto caches signature validity inside keys), but
// not while another goroutine signs with dir (keys.Secret.Sign) or checks a
// keyring key (keys.Public.Check).
func Open(r io.Reader, dir *keys.Secret, opts OpenOptions) (*Opened, error) {
	maxMsg := opts.MaxMessageBytes
	if maxMsg <= 0 {
		maxMsg = DefaultMaxMessageBytes
	}
	maxDec := opts.MaxDecryptedBytes
	if maxDec <= 0 {
		maxDec = DefaultMaxDecryptedBytes
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	msg, err := io.ReadAll(io.LimitReader(r, maxMsg+1))
	if err != nil {
		return nil, err
	}
	if int64(len(msg)) > maxMsg {
		return nil, fmt.Errorf("%w: message over %d bytes", ErrTooLarge, maxMsg)
	}
	br := bufio.NewReader(bytes.NewReader(msg))
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "multipart/encrypted" {
		return &Opened{Entity: msg}, nil
	}
	if !strings.EqualFold(params["protocol"], "application/pgp-encrypted") || params["boundary"] == "" {
		return nil, fmt.Errorf("%w: multipart/encrypted with protocol %q", ErrMalformed, params["protocol"])
	}
	mr := textproto.NewMultipartReader(br, params["boundary"])
	p1, err := mr.NextPart()
	if err != nil {
		return nil, fmt.Errorf("%w: version part: %v", ErrMalformed, err)
	}
	if t, _, _ := mime.ParseMediaType(p1.Header.Get("Content-Type")); t != "application/pgp-encrypted" {
		return nil, fmt.Errorf("%w: first part is %q, want application/pgp-encrypted", ErrMalformed, t)
	}
	p2, err := mr.NextPart()
	if err != nil {
		return nil, fmt.Errorf("%w: encrypted part: %v", ErrMalformed, err)
	}
	e, err := message.New(message.Header{Header: p2.Header}, p2)
	if err != nil {
		return nil, fmt.Errorf("%w: encrypted part: %v", ErrMalformed, err)
	}
	data, err := io.ReadAll(e.Body)
	if err != nil {
		return nil, fmt.Errorf("%w: encrypted part: %v", ErrMalformed, err)
	}
	var pr io.Reader = bytes.NewReader(data)
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0]&0x80 == 0 {
		blk, err := armor.Decode(bytes.NewReader(t))
		if err != nil {
			return nil, fmt.Errorf("%w: armor: %v", ErrMalformed, err)
		}
		if blk.Type != "PGP MESSAGE" {
			return nil, fmt.Errorf("%w: armor block is %q, not a PGP MESSAGE", ErrMalformed, blk.Type)
		}
		pr = blk.Body
	}

	ring := make(openpgp.EntityList, 0, len(opts.Keyring)+1)
	ring = append(ring, dir.Entity())
	byEntity := make(map[*openpgp.Entity]*keys.Public, len(opts.Keyring))
	for _, p := range opts.Keyring {
		ring = append(ring, p.Entity())
		byEntity[p.Entity()] = p
	}
	limit := maxDec
	cfg := &packet.Config{
		MinRSABits:                 keys.MinRSABits,
		Time:                       func() time.Time { return now },
		MaxDecompressedMessageSize: &limit,
	}
	// go-crypto caches signature validity inside the keys it reads, so
	// concurrent Opens with the same keys would race: Open runs one at a
	// time (inbound mail is not the hot path).
	openMu.Lock()
	defer openMu.Unlock()
	md, err := openpgp.ReadMessage(pr, ring, nil, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDecrypt, err)
	}
	if !md.IsEncrypted {
		return nil, fmt.Errorf("%w: the OpenPGP message is not encrypted", ErrMalformed)
	}
	plain, err := io.ReadAll(io.LimitReader(md.UnverifiedBody, maxDec+1))
	if err != nil {
		if errors.Is(err, pgperrors.ErrMessageTooLarge) {
			return nil, fmt.Errorf("%w: decrypted content over %d bytes", ErrTooLarge, maxDec)
		}
		return nil, fmt.Errorf("%w: %v", ErrDecrypt, err)
	}
	if int64(len(plain)) > maxDec {
		return nil, fmt.Errorf("%w: decrypted content over %d bytes", ErrTooLarge, maxDec)
	}
	o := &Opened{Entity: plain, Encrypted: true, Signed: md.IsSigned}
	if md.IsSigned {
		switch {
		case md.IsVerified && md.SignatureError == nil && md.SignedBy != nil && byEntity[md.SignedBy.Entity] != nil:
			o.Signer = byEntity[md.SignedBy.Entity].Fingerprint
			o.SignedAt = md.Signature.CreationTime
		case md.SignatureError != nil:
			o.SignatureErr = fmt.Errorf("%w: %v", ErrBadSignature, md.SignatureError)
		default:
			o.SignatureErr = fmt.Errorf("%w: not made by a key in the keyring", ErrBadSignature)
		}
	}
	return o, nil
}

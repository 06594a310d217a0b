package pgpmime

import (
	"bytes"
	"fmt"
	"io"

	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"

	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/ccdir/ccdir/keys"
)

// SignEncrypt writes inner (a CRLF MIME entity) as one armored OpenPGP
// message, signed by signer and encrypted to rcpt (RFC 3156 §6.2), for
// personal replies. Unlike a digest's detached signature, this signature
// names its intended recipient (go-crypto v2 adds the Intended Recipient
// Fingerprint), so it cannot be replayed to someone else. The signature is
// binary (type 0x00) with keys.SignatureHash and dated by signer's clock;
// the recipient's key is chosen at that time. The data is compressed
// (ZLIB) and encrypted with AES-256, as SEIPDv1 unless the recipient's key
// announces SEIPDv2 support.
//
// go-crypto caches signature validity inside keys: do not call SignEncrypt
// concurrently with other signing by the same signer (keys.Secret.Sign,
// Sign), nor with other use of rcpt.
func SignEncrypt(w io.Writer, inner []byte, signer *keys.Secret, rcpt *keys.Public) error {
	if err := checkEntity(inner); err != nil {
		return err
	}
	cfg := signer.SignConfig()
	cfg.DefaultCipher = packet.CipherAES256
	cfg.DefaultCompressionAlgo = packet.CompressionZLIB
	cfg.MinRSABits = keys.MinRSABits
	now := cfg.Now()

	mu := lockFor(rcpt)
	mu.Lock()
	defer mu.Unlock()
	if _, err := rcpt.Entity().EncryptionKeyWithError(now, cfg); err != nil {
		return fmt.Errorf("%w: key %s: %v", keys.ErrNoEncryptionKey, rcpt.Fingerprint, err)
	}
	var bin bytes.Buffer
	pt, err := openpgp.EncryptWithParams(&bin, []*openpgp.Entity{rcpt.Entity()}, nil, &openpgp.EncryptParams{
		Signers:        []*openpgp.Entity{signer.Entity()},
		EncryptionTime: &now,
		Config:         cfg,
	})
	if err != nil {
		return fmt.Errorf("sign and encrypt to %s: %w", rcpt.Fingerprint, err)
	}
	if _, err := pt.Write(inner); err != nil {
		return err
	}
	if err := pt.Close(); err != nil {
		return err
	}
	var out bytes.Buffer
	appendArmor(&out, "PGP MESSAGE", bin.Bytes())
	_, err = w.Write(out.Bytes())
	return err
}

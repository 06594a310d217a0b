package inbound

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// Signature is one signature of an accepted message, checked on its own:
// go-crypto's SignatureError is nil as soon as any one signature of a
// message verifies, whoever made the others, so a message signed by
// several keys (a KEY-ROTATE signed by the old key and the new one) is
// judged signature by signature here.
type Signature struct {
	// Issuer is the issuer the signature names: a fingerprint, or a key
	// ID (16 hex digits), upper case.
	Issuer string
	// Fingerprint is the primary fingerprint of the key that made it: a
	// registered key (Contact is its contact) or a key attached to the
	// signed content (Attached); "" when no such key has its issuer.
	Fingerprint string
	Contact     string // the registered contact whose key made it, if any
	Attached    bool   // the key is one of Accepted.AttachedKeys
	SignedAt    time.Time
	// Err says why the signature does not count: nil when it verifies,
	// was made within the window and the key is usable now.
	Err error

	raw rawSig
}

// Verified reports whether the signature verifies by a known key.
func (s *Signature) Verified() bool { return s.Err == nil && s.Fingerprint != "" }

// Why a signature does not count (Signature.Err).
var (
	errUnknownKey = errors.New("made by a key neither registered nor attached")
	errFuture     = errors.New("dated in the future")
	errStale      = errors.New("made outside the window of fresh signatures")
)

func issuerOf(sig *packet.Signature) string {
	if len(sig.IssuerFingerprint) > 0 {
		return fmt.Sprintf("%X", sig.IssuerFingerprint)
	}
	if sig.IssuerKeyId != nil {
		return fmt.Sprintf("%016X", *sig.IssuerKeyId)
	}
	return ""
}

// SignedBy reports whether a signature of the message by the key with
// primary fingerprint fpr verified on its own (Signatures).
func (a *Accepted) SignedBy(fpr string) bool {
	for i := range a.Signatures {
		if s := &a.Signatures[i]; s.Verified() && strings.EqualFold(s.Fingerprint, fpr) {
			return true
		}
	}
	return false
}

// MaxAttachedKeys is the most keys read from the attachments of one mail.
const MaxAttachedKeys = 8

// KeyAttachmentError is an attachment that looked like a key and could
// not be read as one (Filename as sent, not cleaned), or, with no
// Filename, the keys past MaxAttachedKeys.
type KeyAttachmentError struct {
	Filename string
	Err      error
}

func (e *KeyAttachmentError) Error() string {
	if e.Filename == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("attachment %q: %v", e.Filename, e.Err)
}

// AttachedKeys reads the public keys attached to signed content: parts of
// type application/pgp-keys or named *.asc (not signatures nor encrypted
// messages), at most MaxAttachedKeys. It is the one reading of attached
// keys: inbound checks their signatures with them, and mailcmd takes a
// new key from them.
func AttachedKeys(parts []pgpmime.Part) (found []*keys.Public, problems []*KeyAttachmentError) {
	for _, p := range parts {
		name := strings.ToLower(p.Filename)
		if !strings.EqualFold(p.ContentType, "application/pgp-keys") && !strings.HasSuffix(name, ".asc") {
			continue
		}
		if strings.EqualFold(p.ContentType, "application/pgp-signature") || strings.EqualFold(p.ContentType, "application/pgp-encrypted") {
			continue
		}
		ks, err := keys.ParsePublic(p.Body)
		if err != nil {
			problems = append(problems, &KeyAttachmentError{Filename: p.Filename, Err: err})
			continue
		}
		found = append(found, ks...)
		if len(found) > MaxAttachedKeys {
			found = found[:MaxAttachedKeys]
			problems = append(problems, &KeyAttachmentError{Err: fmt.Errorf("more than %d keys attached; the others were ignored", MaxAttachedKeys)})
			break
		}
	}
	return found, problems
}
